package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotation"
)

// Change IDs for workflow.GetVersion: behaviour a rotation that was already running when
// its worker was upgraded must not see, so that its history replays on the new code.
const (
	// changeFirstRotationNoGrace: a first rotation, with nothing to revoke, skips the grace.
	changeFirstRotationNoGrace = "first-rotation-no-grace"
	// changeAbortEndsCanceled: an abort ends the workflow Canceled instead of Completed.
	changeAbortEndsCanceled = "abort-ends-canceled"
	// changeDurableRetries: a failed revoke or rollback is retried durably.
	changeDurableRetries = "durable-retries"
	// changeNotify: a rotation that fails, rolls back or cannot revoke notifies webhooks.
	changeNotify = "notify"
)

// notify reports the rotation's state to the inventory's webhooks, from an activity (the
// workflow does no I/O), ignoring its failure: a dead webhook never fails a rotation.
// Rotations an incident started are reported by the incident instead.
func (r *rotateRun) notify(ctx workflow.Context, eventType notify.Type) {
	if r.in.IncidentID != "" || !r.changed(ctx, changeNotify) {
		return
	}
	errText := r.status.Error
	if o := r.status.Outstanding; o != nil {
		errText = o.What + ": " + o.LastError
	}
	in := activities.NotifyInput{Type: string(eventType), SecretID: r.in.SecretID, Kind: r.status.Kind, Step: r.status.Step, Outcome: r.status.Outcome, Error: errText}
	_ = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, notifyOptions), acts.Notify, in).Get(ctx, nil)
}

// final reports whether an outcome ends the rotation (the outstanding ones do not).
func final(outcome string) bool { return !IsOutstanding(outcome) }

// rollback runs the compensation on a disconnected context, so it still runs when the
// workflow was cancelled, and decides what to undo from what the activity observes. It
// reports only what the rollback verified: the kept version is tested before anything is
// said about it, and a rollback that cannot finish keeps trying instead of guessing.
func (r *rotateRun) rollback(ctx workflow.Context, cause error, outcome string) (RotateResult, error) {
	cancelled := temporal.IsCanceledError(cause) || ctx.Err() != nil
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	r.status.Error = activities.ErrorMessage(cause)
	if cancelled {
		outcome = OutcomeAborted
		r.status.Error = "cancelled"
	}

	var rb rotation.RollbackResult
	in := activities.RollbackInput{SecretID: r.in.SecretID, Token: r.token, Failed: r.status.NewVersion, Restore: r.plan.Current, Since: r.started(StepCreate), Until: r.ended(StepCreate), Cause: r.cause()}
	roll := func(ctx workflow.Context) error {
		// What an earlier attempt found stays known: once it has discarded the pending
		// version, the store no longer names the credential it still has to revoke.
		if in.Failed == nil && rb.Failed != nil {
			in.Failed = rb.Failed
		}
		rb = rotation.RollbackResult{}
		err := r.step(ctx, StepRollback, rollbackOptions, acts.Rollback, in, &rb)
		if v, ok := activities.FailedVersionOf(err); ok && in.Failed == nil {
			in.Failed = &v
		}
		return err
	}
	if err := roll(dctx); err != nil {
		// The store or the target did not answer for minutes: a pending version or a new
		// credential may be left. Keep trying until the rollback is done.
		if err := r.keepTrying(dctx, "rollback", OutcomeRollbackOutstanding, err, roll); err != nil {
			r.status.Error = fmt.Sprintf("%s; the rollback could not be finished: %s", r.status.Error, err)
			r.setOutcome(dctx, OutcomeFailed)
			r.notify(dctx, notify.RotationFailed)
			return r.status.RotateResult, temporal.NewNonRetryableApplicationError(
				"rotation of "+string(r.in.SecretID)+" failed and its rollback could not be finished: "+r.status.Error+
					" (check the target and the store now)", ErrTypeFailed, nil, r.status.RotateResult)
		}
	}
	// The kept version is current and works; the new credential may still have to be
	// revoked (the target refused the admin, say). It must not stay valid forever.
	r.status.Rollback = &rb
	if rb.RevokeError != "" {
		revoke := func(ctx workflow.Context) error {
			if err := roll(ctx); err != nil {
				return err
			}
			r.status.Rollback = &rb
			if rb.RevokeError != "" {
				return errors.New(rb.RevokeError)
			}
			return nil
		}
		what := "revoke the new version"
		if r.status.NewVersion != nil {
			what = fmt.Sprintf("revoke new version %d", r.status.NewVersion.Number)
		}
		if err := r.keepTrying(dctx, what, OutcomeRevokeOutstanding, errors.New(rb.RevokeError), revoke); err != nil {
			r.status.Rollback = &rb
			r.status.Error = fmt.Sprintf("%s; %s, but the new version could not be revoked and may still work on the target: %s", r.status.Error, rb.Kept(), err)
			r.setOutcome(dctx, OutcomeRevokeFailed)
			r.notify(dctx, notify.RotationFailed)
			return r.status.RotateResult, temporal.NewNonRetryableApplicationError(
				"rotation of "+string(r.in.SecretID)+" rolled back, but: "+r.status.Error, ErrTypeRevokeFailed, nil, r.status.RotateResult)
		}
	}
	r.status.Rollback = &rb
	r.setOutcome(dctx, outcome)
	if outcome == OutcomeRolledBack {
		r.notify(dctx, notify.RotationRolledBack)
	}
	if outcome == OutcomeAborted {
		// Canceled, not Completed: an aborted rotation must not look like a success in
		// the Web UI's list. (Rotations that began before this change complete as they
		// did, so their histories replay.)
		if !cancelled && !r.changed(dctx, changeAbortEndsCanceled) {
			return r.status.RotateResult, nil
		}
		return r.status.RotateResult, temporal.NewCanceledError(r.status.RotateResult)
	}
	return r.status.RotateResult, temporal.NewNonRetryableApplicationError(
		"rotation of "+string(r.in.SecretID)+" rolled back: "+r.status.Error+"; "+rb.Kept(), ErrTypeRolledBack, nil, r.status.RotateResult)
}

// drain discards the signals waiting on ch.
func drain(ch workflow.ReceiveChannel) {
	for ch.ReceiveAsync(nil) {
	}
}

// sweepMargin widens the window of a rollback's sweep past the end of the Create step as
// the workflow saw it: the activity's last call to the target may land a little later.
const sweepMargin = time.Minute

// ended is when the named step last ended, plus sweepMargin; zero if it never ran.
func (r *rotateRun) ended(step string) time.Time {
	var end time.Time
	for _, st := range r.status.Steps {
		if st.Step == step {
			end = st.Started.Add(st.Duration + sweepMargin)
		}
	}
	return end
}

// started is when the named step first started, zero if it never did.
func (r *rotateRun) started(step string) time.Time {
	for _, st := range r.status.Steps {
		if st.Step == step {
			return st.Started
		}
	}
	return time.Time{}
}

// fail ends the workflow without a rollback: nothing was changed (plan failed).
func (r *rotateRun) fail(ctx workflow.Context, cause error, errType, outcome string) (RotateResult, error) {
	r.status.Error = activities.ErrorMessage(cause)
	r.setOutcome(ctx, outcome)
	r.notify(ctx, notify.RotationFailed)
	return r.status.RotateResult, temporal.NewNonRetryableApplicationError("rotation of "+string(r.in.SecretID)+" failed: "+r.status.Error, errType, nil, r.status.RotateResult)
}

// revokeFailed ends a rotation whose new version is current and works but whose previous
// version could not be revoked: an operator gave up, or the rotation was cancelled.
func (r *rotateRun) revokeFailed(ctx workflow.Context, cause error) (RotateResult, error) {
	r.status.Error = "the new version is current and works, but the previous version could not be revoked and may still work on the target: " + cause.Error()
	r.setOutcome(ctx, OutcomeRevokeFailed)
	r.notify(ctx, notify.RotationFailed)
	if ctx.Err() != nil {
		return r.status.RotateResult, temporal.NewCanceledError(r.status.RotateResult)
	}
	return r.status.RotateResult, temporal.NewNonRetryableApplicationError("rotation of "+string(r.in.SecretID)+": "+r.status.Error, ErrTypeRevokeFailed, nil, r.status.RotateResult)
}

// keepTrying retries attempt after first failed, with a durable timer between attempts
// (backing off from outstandingFirstDelay to outstandingMaxDelay), until an attempt
// succeeds (nil), an operator gives up (SignalGiveUp) or ctx is cancelled (an error
// saying which). SignalRetryNow starts the next attempt at once. While it tries, the
// outcome shows the outstanding state and the status query says what and when.
//
// A rotation an incident started does not wait: the incident must finish and report
// every secret, so the failure is returned at once and the incident's report names it.
func (r *rotateRun) keepTrying(ctx workflow.Context, what, outcome string, first error, attempt func(workflow.Context) error) error {
	if !r.changed(ctx, changeDurableRetries) {
		return fmt.Errorf("%s failed: %s", what, activities.ErrorMessage(first)) // as rotations that began before this change did
	}
	if r.in.IncidentID != "" {
		return fmt.Errorf("%s failed; incident %s reports it instead of retrying: %s", what, r.in.IncidentID, activities.ErrorMessage(first))
	}
	o := &Outstanding{What: what, Attempts: 1, Since: workflow.Now(ctx), LastError: activities.ErrorMessage(first)}
	r.status.Outstanding = o
	r.setOutcome(ctx, outcome)
	if outcome == OutcomeRevokeOutstanding {
		r.notify(ctx, notify.RevokeOutstanding)
	} else {
		r.notify(ctx, notify.RotationFailed)
	}
	retryCh := workflow.GetSignalChannel(ctx, SignalRetryNow)
	giveUpCh := workflow.GetSignalChannel(ctx, SignalGiveUp)
	// Signals sent before this began were about something else (a rollback that has
	// finished since, say): an operator gives up on, or retries, what they saw.
	drain(retryCh)
	drain(giveUpCh)
	kept := len(r.status.Steps) // timings of earlier steps; of the retries only the last is kept
	delay := outstandingFirstDelay
	for {
		o.NextAttempt = workflow.Now(ctx).Add(delay)
		workflow.SetCurrentDetails(ctx, r.details())
		gaveUp := false
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, delay), func(workflow.Future) {})
		sel.AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalRetryNow) })
		sel.AddReceive(giveUpCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalGiveUp); gaveUp = true })
		sel.Select(ctx)
		cancelTimer()
		switch {
		case gaveUp:
			return fmt.Errorf("an operator gave up after %d attempt(s); last error: %s", o.Attempts, o.LastError)
		case ctx.Err() != nil:
			return fmt.Errorf("cancelled after %d attempt(s); last error: %s", o.Attempts, o.LastError)
		}
		err := attempt(ctx)
		o.Attempts++
		if n := len(r.status.Steps); n > kept+1 {
			r.status.Steps = append(r.status.Steps[:kept], r.status.Steps[n-1])
		}
		if n := len(r.status.Steps); n > kept {
			r.status.Steps[n-1].Attempts = o.Attempts
		}
		if err == nil {
			r.status.Outstanding = nil
			return nil
		}
		o.LastError = activities.ErrorMessage(err)
		delay = min(2*delay, outstandingMaxDelay)
	}
}

// details is the line the Web UI shows for the rotation: where it stands, or how it ended.
func (r *rotateRun) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**: ", r.in.SecretID)
	switch o, g := r.status.Outstanding, r.status.RevokeGate; {
	case g != nil && (g.State == GateWaiting || g.State == GateHeld):
		b.WriteString(gateDetails(g, r.in.SecretID))
	case o != nil:
		fmt.Fprintf(&b, "%s, %s outstanding: %d attempt(s) failed since %s, next at %s (`keyturn retry-now %s` tries at once); last error: %s",
			r.status.Outcome, o.What, o.Attempts, o.Since.UTC().Format("2006-01-02 15:04:05Z"), o.NextAttempt.UTC().Format("15:04:05Z"), r.in.SecretID, o.LastError)
	case r.status.Outcome == OutcomeRotated:
		b.WriteString("rotated")
		if v := r.status.NewVersion; v != nil {
			fmt.Fprintf(&b, ": version %d is current", v.Number)
		}
	default:
		b.WriteString(r.status.Outcome)
		if rb := r.status.Rollback; rb != nil {
			b.WriteString(": " + rb.Kept())
		}
		if r.status.Error != "" {
			b.WriteString("; " + r.status.Error)
		}
	}
	return b.String()
}
