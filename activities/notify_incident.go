package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/keyturn/keyturn/notify"
)

// NotifyIncidentInput is what an incident reports about itself: words and counts, never
// material.
type NotifyIncidentInput struct {
	// Type is notify.IncidentStarted, IncidentContained or IncidentFinished.
	Type       string `json:"type"`
	IncidentID string `json:"incidentId"`
	// Outcome is the incident's outcome, in incident_finished only.
	Outcome  string          `json:"outcome,omitempty"`
	Incident notify.Incident `json:"incident"`
}

// NotifyIncident sends an incident-wide event to every route that takes its type (an
// incident has no one secret for a route's match to select by). Like Notify, a webhook
// that is down is reported in the result, never as an error.
//
// The event names the incident's workflow but not its run: an incident continues as new
// every thousand secrets, so its events come from different runs, and each happens once
// per incident. Its ID is thus derived from the incident ID, the type and the outcome, and
// a retried activity, or a run reset to replay it, sends the same ID.
func (a *Activities) NotifyIncident(ctx context.Context, in NotifyIncidentInput) (NotifyResult, error) {
	if a.notifier == nil {
		return NotifyResult{}, nil
	}
	info := activity.GetInfo(ctx)
	summary := in.Incident
	return a.deliver(ctx, notify.Event{
		Type: notify.Type(in.Type), Time: info.StartedTime, Outcome: in.Outcome,
		WorkflowID: info.WorkflowExecution.ID, IncidentID: in.IncidentID, Incident: &summary,
	}), nil
}
