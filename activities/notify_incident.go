package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/keyturn/keyturn/audit"
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
//
// The same event goes to the audit trail, in the incident's chain, under an ID derived the
// same way, after the webhooks: an audit trail that is down neither holds up nor stops
// the page, and its record is logged as an error instead (incidents go on without it).
func (a *Activities) NotifyIncident(ctx context.Context, in NotifyIncidentInput) (NotifyResult, error) {
	var res NotifyResult
	if a.notifier != nil {
		info := activity.GetInfo(ctx)
		summary := in.Incident
		res = a.deliver(ctx, notify.Event{
			Type: notify.Type(in.Type), Time: info.StartedTime, Outcome: in.Outcome,
			WorkflowID: info.WorkflowExecution.ID, IncidentID: in.IncidentID, Incident: &summary,
		})
	}
	a.recordIncident(ctx, in)
	return res, nil
}

// incidentEvents maps an incident's notification to its audit event.
var incidentEvents = map[string]string{
	string(notify.IncidentStarted):   audit.EventIncidentStarted,
	string(notify.IncidentContained): audit.EventIncidentContained,
	string(notify.IncidentFinished):  audit.EventIncidentFinished,
}

// recordIncident writes an incident's event to its chain: the operator who started it,
// the scope as selected and its size, and the counts so far.
func (a *Activities) recordIncident(ctx context.Context, in NotifyIncidentInput) {
	event, ok := incidentEvents[in.Type]
	if a.auditor == nil || !ok {
		return
	}
	s := in.Incident
	r := audit.Record{
		ID:    audit.EventID("incident/"+in.IncidentID, event, in.Outcome),
		Event: event, Outcome: in.Outcome,
		Handles: map[string]string{"mode": s.Mode, "selector": s.Selector},
		Counts: map[string]int{
			"secrets": s.Secrets, "contained": s.Contained, "not_contained": s.NotContained,
			"rotated": s.Rotated, "failed": s.Failed, "needs_human": s.NeedsHuman,
		},
	}
	// The operator starts the incident; its containment and its end are the incident's.
	cause := &Cause{Actor: audit.Actor{Type: audit.ActorIncident, Name: in.IncidentID}, Reason: s.Reason, IncidentID: in.IncidentID}
	if event == audit.EventIncidentStarted {
		cause.Actor = audit.Actor{Type: audit.ActorOperator, Name: s.Operator}
	}
	if err := a.record(ctx, Binding{}, stepRef{cause: cause}, r); err != nil {
		logUnrecorded(ctx, r, err)
	}
}
