package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
)

// OperatorSignal is the payload the CLI sends with abort, skip-grace, retry-now, give-up
// and revoke-now: who sent it, for the audit trail. A signal without one (an older CLI,
// the Temporal UI) is still obeyed and recorded as from an unnamed operator.
type OperatorSignal struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// cause is who asked for this rotation and why, as every step's audit record says it.
func (r *rotateRun) cause() *activities.Cause {
	c := &activities.Cause{Reason: r.in.Reason, IncidentID: r.in.IncidentID}
	switch by := r.in.RequestedBy; {
	case r.in.IncidentID != "":
		c.Actor = audit.Actor{Type: audit.ActorIncident, Name: r.in.IncidentID}
	case by == "schedule" || strings.HasPrefix(by, "schedule "):
		c.Actor = audit.Actor{Type: audit.ActorSchedule, Name: strings.TrimSpace(strings.TrimPrefix(by, "schedule"))}
	case by != "":
		c.Actor = audit.Actor{Type: audit.ActorOperator, Name: by}
	default:
		c.Actor = audit.Actor{Type: audit.ActorOperator}
	}
	return c
}

// audit reports an event of this rotation to the trail, from a local activity. key names
// the event within the run, so a retried report is recorded once.
func (r *rotateRun) audit(ctx workflow.Context, key string, in activities.AuditInput) {
	if !r.auditing {
		return
	}
	in.Key, in.SecretID = key, r.in.SecretID
	if in.Cause == nil {
		in.Cause = r.cause()
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(dctx, auditOptions), acts.Audit, in).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("audit record not written", "event", in.Event, "error", activities.ErrorMessage(err))
	}
}

// endKey names the rotation's end among the run's audit events, whichever activity
// records it.
const endKey = "rotation|finished"

// endEvent is the rotation's end as the audit trail records it.
func (r *rotateRun) endEvent(outcome, errText string) activities.AuditInput {
	return activities.AuditInput{
		Key: endKey, Event: audit.EventRotationFinished, SecretID: r.in.SecretID, Cause: r.cause(),
		Outcome: outcome, Error: errText, Version: r.status.NewVersion,
	}
}

// finished records the rotation's end with its outcome, unless its last step did.
func (r *rotateRun) finished(ctx workflow.Context) {
	if r.endRecorded {
		return
	}
	r.audit(ctx, endKey, r.endEvent(r.status.Outcome, r.status.Error))
}

// endRecord is the rotation's end for its last activity to record (a quiet run's revoke),
// with that outcome: nil when this run does not do that.
func (r *rotateRun) endRecord(outcome string) *activities.AuditInput {
	if !r.auditing || r.generation < genQuiet {
		return nil
	}
	e := r.endEvent(outcome, "")
	return &e
}

// took receives one operator signal from c and records it as the operator's action.
func (r *rotateRun) took(ctx workflow.Context, c workflow.ReceiveChannel, action string) {
	if !r.auditing {
		c.Receive(ctx, nil) // as before this change: never decoded, so never dropped
		return
	}
	var payload any
	c.Receive(ctx, &payload)
	r.recordSignal(ctx, action, operatorOf(payload))
}

// tookAsync is took without waiting: false when no signal was there.
func (r *rotateRun) tookAsync(ctx workflow.Context, c workflow.ReceiveChannel, action string) bool {
	if !r.auditing {
		return c.ReceiveAsync(nil)
	}
	var payload any
	if !c.ReceiveAsync(&payload) {
		return false
	}
	r.recordSignal(ctx, action, operatorOf(payload))
	return true
}

// operatorOf reads an OperatorSignal from a signal's payload, whatever was sent. The
// payload is received as any JSON value, not as an OperatorSignal: the SDK drops a signal
// whose payload does not decode into the given type and goes on waiting, so a skip-grace
// sent from the Web UI with a string would otherwise be lost and the rotation stuck.
func operatorOf(payload any) OperatorSignal {
	m, _ := payload.(map[string]any)
	by, _ := m["by"].(string)
	reason, _ := m["reason"].(string)
	return OperatorSignal{By: by, Reason: reason}
}

func (r *rotateRun) recordSignal(ctx workflow.Context, action string, s OperatorSignal) {
	r.signals++
	c := r.cause()
	c.Actor, c.Reason = audit.Actor{Type: audit.ActorOperator, Name: s.By}, s.Reason
	r.audit(ctx, fmt.Sprintf("operator|%s|%d", action, r.signals), activities.AuditInput{
		Event: audit.EventOperator, Step: action, Cause: c, Version: r.status.PreviousVersion,
	})
}
