// Package workflows holds Keyturn's Temporal workflows: orchestration only. They are
// deterministic, do no I/O and never see secret material: inputs, results, signals,
// queries and search attributes carry references (secret IDs, version tokens, non-secret
// handles) and the activities move material between targets and stores.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/secret"
)

// Error types of a Rotate workflow that did not rotate, matched by callers with
// temporal.ApplicationError.Type(). Each failure carries the RotateResult as details.
const (
	ErrTypeInvalidInput = "KeyturnInvalidInput"
	ErrTypeRolledBack   = "KeyturnRolledBack"
	ErrTypeRevokeFailed = "KeyturnRevokeFailed"
	ErrTypeFailed       = "KeyturnRotationFailed"
)

// The activities are called by method reference on a nil pointer: the SDK needs only the
// method's name and signature.
var acts *activities.Activities

// Rotate rotates one secret: create a new version, test it, promote it, wait out the grace
// period, revoke the previous version. A failure before the grace period rolls back from
// observed state so the credential in use keeps working.
func Rotate(ctx workflow.Context, in RotateInput) (RotateResult, error) {
	r := &rotateRun{in: in}
	r.status.SecretID = in.SecretID
	r.status.StartedAt = workflow.Now(ctx)
	r.status.Step = StepPlan
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RotateStatus, error) { return r.status, nil }); err != nil {
		return RotateResult{}, err
	}
	r.generation = rotateGeneration(ctx, in)
	r.auditing = r.generation >= genAudited
	if r.in.Generation >= int(firstNamedGeneration) {
		// A starter that names the generation shows running (RotateStartOptions). The
		// input says so, not the search attributes: a history read back from the server
		// carries their latest values in its started event, so reading them here would
		// not replay.
		r.shownStep = StepRunning
	}
	res, err := r.run(ctx)
	r.finished(ctx)
	return res, err
}

type rotateRun struct {
	in     RotateInput
	status RotateStatus
	token  secret.VersionToken
	plan   activities.PlanResult
	// generation is the behaviour this run began with (genAudited, genLean).
	generation workflow.Version
	// auditing: this run reports its end and operators' signals to the audit trail.
	auditing bool
	// heldAttrs are search attribute updates waiting for the next step's (upsert).
	heldAttrs []temporal.SearchAttributeUpdate
	// shownStep is what the KeyturnStep search attribute says (quiet runs, showStep).
	shownStep string
	// endRecorded: the Revoke activity recorded the rotation's end (quiet runs).
	endRecorded bool
	// quick: the run tries its quick steps as local activities first (genLocal,
	// quickStep); the first step that needs its regular activity ends that for the run.
	quick bool
	// signals counts the operator signals recorded, naming each one's audit event.
	signals int
}

func (r *rotateRun) run(ctx workflow.Context) (RotateResult, error) {
	// Step 0. Reject input no retry can fix.
	if err := r.in.Validate(); err != nil {
		return r.fail(ctx, fmt.Errorf("invalid input: %w", err), ErrTypeInvalidInput, OutcomeFailed)
	}
	info := workflow.GetInfo(ctx)
	r.token = secret.VersionToken(info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID)

	// Step 1. Plan: resolve the secret on the worker and read the version in use. A local
	// activity: it only reads, and it saves a round trip to the server per rotation.
	plan := func(ctx workflow.Context) workflow.Future {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, planOptions), acts.Plan, activities.PlanInput{SecretID: r.in.SecretID, Cause: r.cause()})
	}
	if err := r.timed(ctx, StepPlan, plan, &r.plan); err != nil {
		return r.fail(ctx, err, ErrTypeFailed, OutcomeFailed)
	}
	r.status.Kind = r.plan.Kind
	r.status.PreviousVersion = r.plan.Current
	// A first rotation's promote task also ends the run (nothing to revoke): a rerun of
	// that task that saw an abort would end otherwise than the end it recorded, so its
	// Promote stays regular.
	r.quick = r.generation >= genLocal && r.status.PreviousVersion != nil
	r.hold(ctx, SearchAttrKind.ValueSet(r.plan.Kind))
	grace := r.plan.Grace
	if r.in.Grace != nil {
		grace = *r.in.Grace
	}

	// Step 1b, contain mode only: every version that exists may have leaked, so all are
	// revoked before anything else. From here on there is nothing to restore: a failed
	// rotation must not bring a contained credential back.
	if r.in.Contain {
		grace = 0
		if !r.in.AlreadyContained {
			var contained activities.ContainResult
			if err := r.step(ctx, StepContain, containOptions, acts.Contain, activities.ContainInput{SecretID: r.in.SecretID, Cause: r.cause()}, &contained); err != nil {
				return r.fail(ctx, err, ErrTypeFailed, OutcomeFailed)
			}
			r.status.ContainedAt = contained.ContainedAt
			r.status.EndedSessions = contained.Ended
		}
		r.plan.Current = nil
	}

	// Step 2. Create. From here on any failure rolls back, because Create may have staged
	// a version or changed the target before it failed.
	// A regular activity: the plan is not in the history until the workflow task that
	// ran it completes, and a local Create in that task, lost with its worker, would be
	// followed by a rerun that could fail its plan and end without the rollback that
	// undoes what the lost Create changed.
	var created rotation.CreateResult
	if err := r.step(ctx, StepCreate, createOptions, acts.Create, r.stepInput(), &created); err != nil {
		return r.rollback(ctx, err, OutcomeRolledBack)
	}
	r.status.NewVersion = &created.Version

	// Step 3. Test the new version against the real target. Always a regular activity:
	// the plan and the new version are in the history before anything is promoted.
	if err := r.step(ctx, StepTest, testOptions, acts.Test, r.stepInput(), nil); err != nil {
		return r.rollback(ctx, err, OutcomeRolledBack)
	}

	// An abort sent while the new version was being made and tested stops the rotation
	// here, before consumers ever see the new version.
	if r.tookAsync(ctx, workflow.GetSignalChannel(ctx, SignalAbort), SignalAbort) {
		return r.rollback(ctx, errors.New("aborted by signal before promote"), OutcomeAborted)
	}

	// Step 4. Promote: consumers now read the new version.
	var promoted rotation.PromoteResult
	if err := r.quickStep(ctx, StepPromote, promoteOptions, acts.Promote, r.stepInput(), &promoted); err != nil {
		return r.rollback(ctx, err, OutcomeRolledBack)
	}
	r.status.NewVersion = &promoted.Current
	r.status.PromotedAt = workflow.Now(ctx)
	if promoted.Previous != nil {
		r.status.PreviousVersion = promoted.Previous
	}

	// Step 5. Grace: consumers with cached credentials refresh before the old one dies.
	// With no previous version (a first rotation) nothing will die, so nothing waits.
	if r.status.PreviousVersion == nil && r.changed(ctx, changeFirstRotationNoGrace) {
		grace = 0
	}
	if aborted, err := r.grace(ctx, grace); err != nil || aborted {
		if err == nil {
			err = errors.New("aborted by signal during the grace period")
		}
		return r.rollback(ctx, err, OutcomeAborted)
	}

	// Step 5b. Revoke gate: when the secret's policy says so, wait until the target shows
	// the previous version unused (or hold its revoke) before revoking it.
	if r.gated(ctx) {
		r.audit(ctx, "revoke_gate|started", activities.AuditInput{Event: audit.EventStepStarted, Step: StepRevokeGate, Version: r.status.PreviousVersion})
		err := r.revokeGate(ctx, *r.plan.RevokeGate)
		// The gate's end and how: idle, revoked_anyway, revoked_by_operator, stopped.
		r.audit(ctx, "revoke_gate|ended", activities.AuditInput{Event: audit.EventStepSucceeded, Step: StepRevokeGate, Outcome: r.status.RevokeGate.State, Version: r.status.PreviousVersion})
		if err != nil {
			return r.revokeFailed(ctx, err)
		}
	}

	// Step 6. Revoke the previous version, keeping the new one. A revoke that fails is
	// not the end: the old credential must not stay valid forever, so it is retried,
	// durably, until it succeeds or an operator gives up. In contain mode too: a rotation
	// an incident stopped may still have had an activity running (a rollback re-applying
	// the version in use), which could re-enable a contained version after the containment.
	if r.status.PreviousVersion != nil {
		in := activities.RevokeInput{SecretID: r.in.SecretID, Version: *r.status.PreviousVersion, Keep: r.status.NewVersion, Cause: r.cause()}
		if r.plan.PurgeAfter == nil {
			in.Finished = r.endRecord(OutcomeRotated)
		}
		// Always a regular activity, never a local one: a revoke cannot be undone, and a
		// local one would share its workflow task with whatever decided to revoke. A task
		// the server refuses (a signal or a cancel arrived while it ran) or a worker lost
		// with it runs again, and an abort or cancel seen then would roll back onto the
		// previous version that the lost local revoke had already revoked.
		revoke := func(ctx workflow.Context) error {
			var res activities.RevokeResult
			err := r.step(ctx, StepRevoke, revokeOptions, acts.Revoke, in, &res)
			r.endRecorded = err == nil && res.EndRecorded
			return err
		}
		if err := revoke(ctx); err != nil {
			what := fmt.Sprintf("revoke previous version %d", r.status.PreviousVersion.Number)
			if err := r.keepTrying(ctx, what, OutcomeRevokeOutstanding, err, revoke); err != nil {
				return r.revokeFailed(ctx, err)
			}
		}
	}
	// Step 7, for kinds whose revocation can still be undone (a deactivated IAM key):
	// after the recovery window, make it final. The previous version is already refused,
	// so neither a failure nor a cancellation here changes the outcome; both are reported.
	if r.status.PreviousVersion != nil && r.plan.PurgeAfter != nil {
		r.purge(ctx, *r.plan.PurgeAfter)
	}
	r.setOutcome(ctx, OutcomeRotated) // also sets the step to done
	return r.status.RotateResult, nil
}

// purge waits d (a skip-grace signal ends the wait too) and purges the previous version.
func (r *rotateRun) purge(ctx workflow.Context, d time.Duration) {
	r.setStep(ctx, StepPurge)
	// A skip-grace sent before this step (during create or test of a rotation without a
	// grace period) was meant for the grace period, not for the recovery window that
	// keeps a revoked key recoverable.
	drain(workflow.GetSignalChannel(ctx, SignalSkipGrace))
	if d > 0 {
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		defer cancelTimer()
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, d), func(workflow.Future) {})
		sel.AddReceive(workflow.GetSignalChannel(ctx, SignalSkipGrace), func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalSkipGrace) })
		sel.Select(ctx)
		if ctx.Err() != nil {
			r.status.Error = "cancelled before purge: the previous version is revoked but not yet deleted on the target"
			return
		}
	}
	in := activities.RevokeInput{SecretID: r.in.SecretID, Version: *r.status.PreviousVersion, Keep: r.status.NewVersion, Cause: r.cause()}
	if err := r.step(ctx, StepPurge, revokeOptions, acts.Purge, in, nil); err != nil {
		r.status.Error = "purge failed, the previous version is revoked but not deleted on the target: " + activities.ErrorMessage(err)
	}
}

func (r *rotateRun) stepInput() activities.StepInput {
	return activities.StepInput{SecretID: r.in.SecretID, Token: r.token, Cause: r.cause()}
}

// step runs one activity, keeping the status, the search attribute and the timings current.
func (r *rotateRun) step(ctx workflow.Context, name string, opts workflow.ActivityOptions, activity, input, result any) error {
	return r.timed(ctx, name, func(ctx workflow.Context) workflow.Future {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), activity, input)
	}, result)
}

// quickStep runs a step that is usually over in milliseconds. In a genLocal run its
// first attempt is a local activity: it runs on this worker within the current workflow
// task, which spares the server a task and the worker a round trip. An attempt that fails
// in a way a retry could fix, or runs out of time, is followed by the regular activity,
// with its own retries, heartbeat and place among the Web UI's pending activities. After
// a failed local attempt the rest of the run uses regular activities. Steps are
// idempotent, so an attempt that timed out and is still stopping does the same work as
// its retry.
//
// A local attempt's result is kept only when its workflow task completes; a task lost
// with its worker, or refused by the server, runs again from the last one kept and may
// decide differently (an abort it now sees rolls back). So a step is quick only if the
// rollback undoes it and everything it depends on is already in the history: Promote.
func (r *rotateRun) quickStep(ctx workflow.Context, name string, opts workflow.ActivityOptions, activity, input, result any) error {
	if !r.quick || ctx.Err() != nil {
		// A cancelled run meets the step as a regular activity would: cancelled at once.
		return r.step(ctx, name, opts, activity, input, result)
	}
	// Disconnected: a cancel delivered while the attempt runs (a workflow task that
	// outlived its timeout and heartbeat) must not report the step over while it still
	// changes the target. The attempt ends within quickOptions' timeout; the next step
	// sees the cancel.
	lctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	err := r.timed(lctx, name, func(ctx workflow.Context) workflow.Future {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, quickOptions), activity, input)
	}, result)
	if err == nil {
		return nil
	}
	r.quick = false
	if ctx.Err() != nil || !retryable(err) {
		return err
	}
	return r.step(ctx, name, opts, activity, input, result)
}

// retryable reports whether a step's failure is one its retries could fix: not invalid
// configuration, a denied permission, an unknown secret or a failed check, which the
// activities mark non-retryable. The mark is part of the recorded failure, so a replay
// decides the same way whatever list of types a later version keeps.
func retryable(err error) bool {
	var appErr *temporal.ApplicationError
	return !errors.As(err, &appErr) || !appErr.NonRetryable()
}

// timed runs one step and records it in the status.
func (r *rotateRun) timed(ctx workflow.Context, name string, start func(workflow.Context) workflow.Future, result any) error {
	r.setStep(ctx, name)
	started := workflow.Now(ctx)
	err := start(ctx).Get(ctx, result)
	timing := StepTiming{Step: name, Started: started, Duration: workflow.Now(ctx).Sub(started)}
	if err != nil {
		timing.Error = activities.ErrorMessage(err)
		r.status.LastError = timing.Error
	}
	r.status.Steps = append(r.status.Steps, timing)
	return err
}

func (r *rotateRun) setStep(ctx workflow.Context, name string) {
	r.status.Step = name
	if name == StepPlan && r.generation >= genLean {
		// The starter set it (StartOptions); a run started elsewhere shows it from create.
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s**: %s", r.in.SecretID, name))
		return
	}
	r.showStep(ctx, name)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s**: %s", r.in.SecretID, name))
}

// setOutcome records how the rotation ended (or an outstanding state) in the result, the
// KeyturnOutcome search attribute and the details the Web UI shows, from one place so
// they never disagree. A final outcome other than rotated also becomes the KeyturnStep.
func (r *rotateRun) setOutcome(ctx workflow.Context, outcome string) {
	r.status.Outcome = outcome
	attrs := []temporal.SearchAttributeUpdate{SearchAttrOutcome.ValueSet(outcome)}
	if final(outcome) {
		r.status.Step = StepDone
		if outcome != OutcomeRotated {
			r.status.Step = outcome
		}
		attrs = append(attrs, SearchAttrStep.ValueSet(r.status.Step))
		r.shownStep = r.status.Step
	}
	r.upsert(ctx, attrs...)
	workflow.SetCurrentDetails(ctx, r.details())
}

// grace waits for the grace period, a skip-grace signal, an abort signal or cancellation.
// It reports aborted=true for an abort signal and returns the cancellation error if the
// workflow was cancelled.
func (r *rotateRun) grace(ctx workflow.Context, d time.Duration) (aborted bool, err error) {
	abortCh := workflow.GetSignalChannel(ctx, SignalAbort)
	skipCh := workflow.GetSignalChannel(ctx, SignalSkipGrace)
	if d <= 0 {
		// No grace, but an abort sent while the earlier steps ran still counts.
		return r.tookAsync(ctx, abortCh, SignalAbort), nil
	}
	r.setStep(ctx, StepGrace)
	started := workflow.Now(ctx)
	r.status.GraceUntil = started.Add(d)
	r.audit(ctx, "grace|started", activities.AuditInput{Event: audit.EventStepStarted, Step: StepGrace, Version: r.status.PreviousVersion})
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(timerCtx, d)

	ended := "elapsed"
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.AddReceive(skipCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalSkipGrace); ended = "skipped" })
	sel.AddReceive(abortCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalAbort); aborted, ended = true, "aborted" })
	sel.Select(ctx)
	r.status.Steps = append(r.status.Steps, StepTiming{Step: StepGrace, Started: started, Duration: workflow.Now(ctx).Sub(started)})
	if ctx.Err() != nil {
		ended = "cancelled"
	}
	// The grace period's end: elapsed, skipped or aborted by an operator, or cancelled.
	r.audit(ctx, "grace|ended", activities.AuditInput{Event: audit.EventStepSucceeded, Step: StepGrace, Outcome: ended, Version: r.status.PreviousVersion})
	if ctx.Err() != nil {
		return false, temporal.NewCanceledError()
	}
	return aborted, err
}
