package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
)

// changeIncidentNotify: an incident tells the inventory's webhooks that it started, that
// its scope is contained (contain mode) and that it finished. Incidents that began before
// this change send nothing, so their histories replay.
const changeIncidentNotify = "incident-notify"

// incidentNotifier sends an incident's events from an activity (the workflow does no
// I/O) without waiting for them: a dead webhook must not hold up containment. The events
// go out one after the other, in the order the incident reached them, so a receiver never
// reads "contained" or "finished" before "started". Each run waits for what it sent
// before it ends, so no event is lost with the run; that wait is bounded by
// notifyOptions and its outcome is only logged, never the incident's.
type incidentNotifier struct {
	on      bool
	pending []pendingEvent
	// last is the newest event's send; the next one starts when it is over.
	last workflow.Future
	// settled counts the secrets whose containment is over: contained by the batch, or
	// done (contained by their own rotation, or failed). incident_contained is sent when
	// it reaches the scope's size, which happens once per incident.
	settled int
}

type pendingEvent struct {
	typ notify.Type
	f   workflow.Future
}

// startNotifier decides, once per run, whether this run notifies.
func (r *incidentRun) startNotifier(ctx workflow.Context) {
	r.notifier.on = workflow.GetVersion(ctx, changeIncidentNotify, workflow.DefaultVersion, 1) >= 1
}

// notify starts sending an event about the incident as it stands, on a context the
// incident's cancellation does not reach, so a cancelled incident still reports.
func (r *incidentRun) notify(ctx workflow.Context, typ notify.Type, outcome string) {
	if !r.notifier.on {
		return
	}
	in := activities.NotifyIncidentInput{Type: string(typ), IncidentID: r.in.IncidentID, Outcome: outcome, Incident: r.summary(typ)}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	prev := r.notifier.last
	f, done := workflow.NewFuture(dctx)
	workflow.Go(dctx, func(gctx workflow.Context) {
		if prev != nil {
			_ = prev.Get(gctx, nil) // its outcome is reported by finishNotifying
		}
		var res activities.NotifyResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(gctx, notifyOptions), acts.NotifyIncident, in).Get(gctx, &res)
		done.Set(res, err)
	})
	r.notifier.last = f
	r.notifier.pending = append(r.notifier.pending, pendingEvent{typ, f})
}

// settle counts n secrets whose containment is over and, in contain mode, sends
// incident_contained when that completes the scope.
func (r *incidentRun) settle(ctx workflow.Context, n int) {
	before := r.notifier.settled
	r.notifier.settled += n
	if r.in.Mode == ModeContain && before < r.report.Total && r.notifier.settled >= r.report.Total {
		r.notify(ctx, notify.IncidentContained, "")
	}
}

// settledIn counts, for a run that continues an incident, the secrets whose containment
// the earlier runs settled.
func settledIn(c *IncidentCarry) int {
	n := 0
	for i := range c.Scope {
		if c.batchContained(i) || i < len(c.Done) {
			n++
		}
	}
	return n
}

// finishNotifying sends incident_finished with the incident's outcome (unless the run
// continues as new) and waits for every event this run sent.
func (r *incidentRun) finishNotifying(ctx workflow.Context, err error) {
	if !r.notifier.on {
		return
	}
	if outcome := IncidentOutcome(r.report, err, ctx.Err() != nil); outcome != "" {
		r.notify(ctx, notify.IncidentFinished, outcome)
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	for _, p := range r.notifier.pending {
		var res activities.NotifyResult
		if err := p.f.Get(dctx, &res); err != nil {
			workflow.GetLogger(ctx).Warn("incident notification not sent", "incident", r.in.IncidentID, "event", string(p.typ), "error", activities.ErrorMessage(err))
		} else if len(res.Failed) > 0 {
			workflow.GetLogger(ctx).Warn("incident notification not delivered", "incident", r.in.IncidentID, "event", string(p.typ), "eventId", res.EventID, "failed", res.Failed)
		}
	}
	r.notifier.pending, r.notifier.last = nil, nil
}

// summary is the incident as its typ event describes it: the operator's words and the
// counts so far.
func (r *incidentRun) summary(typ notify.Type) notify.Incident {
	p := r.report.IncidentProgress
	s := notify.Incident{
		Mode: r.in.Mode, Selector: r.in.Selector.String(), Reason: r.in.Reason, Operator: r.in.Operator,
		Secrets: p.Total, Contained: p.Contained, Rotated: p.Rotated, Failed: p.Failed, NeedsHuman: p.NeedsHuman,
		ContainedSeconds: float64(p.AllContainedMs) / 1000,
	}
	if r.in.Mode == ModeContain && typ != notify.IncidentStarted {
		s.NotContained = p.Total - p.Contained
	}
	return s
}
