package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/secret"
)

// ErrTypeAuditUnavailable: the audit trail could not be written. The step is retried:
// like Vault with its audit devices, Keyturn changes nothing it cannot record.
const ErrTypeAuditUnavailable = "KeyturnAuditUnavailable"

// auditWriteTimeout bounds one append to the audit trail.
const auditWriteTimeout = 15 * time.Second

// Auditor appends records to the audit trail (an *audit.Log).
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// WithAudit makes every step, and every event the workflows report through Audit, leave
// a record on l. Without it nothing is recorded.
func WithAudit(l Auditor) Option {
	return func(a *Activities) { a.auditor = l }
}

// Cause says who or what asked for a change and why. The workflow passes it with every
// step, so each record names its actor.
type Cause struct {
	Actor      audit.Actor `json:"actor"`
	Reason     string      `json:"reason,omitempty"`
	IncidentID string      `json:"incidentId,omitempty"`
}

// stepRef is what a step's records say about the secret and the version it works on.
type stepRef struct {
	secretID secret.ID
	cause    *Cause
	token    secret.VersionToken
	version  *secret.Version
	// readOnly marks a step that changes nothing (a poll): it is not recorded.
	readOnly bool
}

// stepEventID is the identity of a step's event: the workflow, run and activity (stable
// across the activity's retries) and what happened, so a retried attempt, or another
// worker taking over from a dead one, writes nothing twice.
func stepEventID(ctx context.Context, key ...string) string {
	if !activity.IsActivity(ctx) {
		return "" // a step run outside Temporal (a unit test) records nothing
	}
	info := activity.GetInfo(ctx)
	return audit.EventID(append([]string{info.WorkflowExecution.ID, info.WorkflowExecution.RunID, activityKey(info)}, key...)...)
}

// activityKey names the running activity within its run. The SDK numbers a run's local
// activities apart from its regular ones (a local Promote and a regular Create may both
// be "2"), so a local one's key says so.
func activityKey(info activity.Info) string {
	if info.IsLocalActivity {
		return "local/" + info.ActivityID
	}
	return info.ActivityID
}

// record fills r (its ID set by the caller, from the event) with the running activity's
// workflow and run, the secret's kind and owner and the cause, and appends it.
func (a *Activities) record(ctx context.Context, b Binding, ref stepRef, r audit.Record) error {
	return appendRecord(ctx, a.auditor, b, ref, r)
}

func appendRecord(ctx context.Context, auditor Auditor, b Binding, ref stepRef, r audit.Record) error {
	if auditor == nil || ref.readOnly || !activity.IsActivity(ctx) {
		return nil
	}
	info := activity.GetInfo(ctx)
	r.Time = time.Now()
	r.WorkflowID, r.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
	r.SecretID, r.Kind, r.Owner = ref.secretID, b.Kind, b.Owner
	applyCause(&r, ref.cause)
	applyVersion(&r, ref.token, ref.version)
	// A cancelled step still records how it ended; the write has its own bound.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	if _, err := auditor.Append(wctx, r); err != nil {
		return temporal.NewApplicationError(fmt.Sprintf("audit trail unavailable: %v", err), ErrTypeAuditUnavailable)
	}
	return nil
}

func applyCause(r *audit.Record, c *Cause) {
	if c == nil {
		r.Actor = audit.Actor{Type: audit.ActorWorker}
		return
	}
	r.Actor, r.Reason, r.IncidentID = c.Actor, c.Reason, c.IncidentID
}

func applyVersion(r *audit.Record, token secret.VersionToken, v *secret.Version) {
	r.VersionToken = token
	if v != nil {
		r.VersionToken, r.VersionNumber = v.Token, v.Number
		r.Handles = maps.Clone(v.Metadata)
	}
}

// stepStarted, stepFailed and stepSucceeded are a step's three records. A failure is
// recorded per attempt (a retry may succeed); start and success once per step.
func (a *Activities) stepStarted(ctx context.Context, b Binding, ref stepRef) error {
	return a.record(ctx, b, ref, audit.Record{ID: stepEventID(ctx, "started"), Event: audit.EventStepStarted, Step: stepName(ctx)})
}

func (a *Activities) stepFailed(ctx context.Context, b Binding, ref stepRef, err error) {
	r := audit.Record{Event: audit.EventStepFailed, Step: stepName(ctx)}
	r.ID = stepEventID(ctx, "failed", withFailure(ctx, &r, err))
	// A failure that cannot be recorded is not worth failing the step over: the step
	// failed anyway, and its retry or the rollback that follows is recorded.
	_ = a.record(ctx, b, ref, r)
}

// withFailure fills r with err's class and message and the running attempt, and returns
// the attempt as the part of the record's identity that tells one failed attempt from
// the next.
func withFailure(ctx context.Context, r *audit.Record, err error) string {
	r.ErrorClass, r.Error, r.Attempt = errorClass(err), ErrorMessage(err), activity.GetInfo(ctx).Attempt
	return strconv.Itoa(int(r.Attempt))
}

func (a *Activities) stepSucceeded(ctx context.Context, b Binding, ref stepRef, out any) error {
	if v := resultVersion(out); v != nil {
		ref.version = v
	}
	return a.record(ctx, b, ref, audit.Record{ID: stepEventID(ctx, "succeeded"), Event: audit.EventStepSucceeded, Step: stepName(ctx)})
}

// resultVersion is the version a step's result names: the one Create made, the one
// Promote made current.
func resultVersion(out any) *secret.Version {
	switch r := out.(type) {
	case rotation.CreateResult:
		return &r.Version
	case rotation.PromoteResult:
		return &r.Current
	}
	return nil
}

// errorClass is the error's type as the retry policies match it.
func errorClass(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// ErrorMessage flattens an activity's failure to its innermost message, which the
// activities built from material-free errors: what the workflow, its status and the audit
// trail say about it.
func ErrorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	var canceledErr *temporal.CanceledError
	if errors.As(err, &canceledErr) {
		return "cancelled"
	}
	return err.Error()
}

// AuditInput is an event a workflow reports itself (it does no I/O): a rotation's end and
// its outcome, an operator's signal. Key tells the run's events apart (the workflow
// counts them), so a retried report is recorded once.
type AuditInput struct {
	Key      string          `json:"key"`
	Event    string          `json:"event"`
	SecretID secret.ID       `json:"secretId"`
	Cause    *Cause          `json:"cause,omitempty"`
	Step     string          `json:"step,omitempty"`
	Outcome  string          `json:"outcome,omitempty"`
	Error    string          `json:"error,omitempty"`
	Version  *secret.Version `json:"version,omitempty"`
}

// Audit records an event a workflow reports. It runs as a local activity: it only
// appends, and a local activity costs the rotation's history one marker.
func (a *Activities) Audit(ctx context.Context, in AuditInput) error {
	return a.recordEvent(ctx, in)
}

// recordEvent records an event a workflow reports, from whichever of its activities
// carries it (Audit, or a Revoke that ends the rotation). The record's identity is the
// run and the key, so it is the same whichever activity writes it.
func (a *Activities) recordEvent(ctx context.Context, in AuditInput) error {
	if a.auditor == nil || !activity.IsActivity(ctx) {
		return nil
	}
	b, err := a.resolver.Resolve(ctx, in.SecretID)
	if err != nil {
		b = Binding{} // a secret gone from the inventory is still recorded, by ID
	}
	info := activity.GetInfo(ctx)
	// The activity ID of a local activity is its sequence in the run; the key, not it,
	// names the event, so the record ID does not depend on how many came before.
	r := audit.Record{
		ID:    audit.EventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, in.Key),
		Event: in.Event, Step: in.Step, Outcome: in.Outcome, Error: in.Error,
	}
	return a.record(ctx, b, stepRef{secretID: in.SecretID, cause: in.Cause, version: in.Version}, r)
}
