package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
)

// ScheduledWorkflowName is the registered name of the workflow a Keyturn schedule starts
// (schedule format 2). Its runs are told that their search attributes are set
// (ScheduledInput.StartAttributes). It is a name of its own so that a worker from before
// format 2, which would ignore that and send the updates a newer worker's replay does not
// expect, cannot take such a run during a rolling upgrade: it does not know the name, and
// the run waits for a newer worker.
const ScheduledWorkflowName = "ScheduledRun"

// ScheduledWorkflowNameFormat1 is the name schedules written before format 2 start: the
// same workflow, whose runs set their search attributes themselves. Still registered
// for those schedules until `keyturn apply` rewrites them, and for runs in flight.
const ScheduledWorkflowNameFormat1 = "ScheduledRotate"

// Outcomes of a scheduled run that did not rotate. A run that did start a rotation takes
// that rotation's outcome (OutcomeRotated, OutcomeRolledBack, ...).
const (
	// ScheduledSkipped: a rotation of the secret was already running under
	// rotate/<secret-id>, so this run started none; the running one was left alone.
	ScheduledSkipped = "skipped"
	// ScheduledNotDue: a renewal check found the current version not due yet.
	ScheduledNotDue = "not_due"
)

// Steps of a scheduled run, as shown in the KeyturnStep search attribute until the run
// ends and the attribute shows its outcome.
const (
	ScheduledStepCheck  = "renewal-check"
	ScheduledStepRotate = "rotating"
)

// Reasons recorded in the RotateInput of a rotation a schedule started.
const (
	ReasonScheduled = "scheduled"
	ReasonRenewal   = "scheduled renewal"
)

// ErrTypeScheduledRotationFailed is the error type of a scheduled run that ended other
// than rotated, aborted, skipped or not due: its renewal check, the rotation's start or
// the rotation itself failed. The failure carries the ScheduledResult as details.
const ErrTypeScheduledRotationFailed = "KeyturnScheduledRotationFailed"

// ScheduledInput is what a schedule passes to each run. References only.
type ScheduledInput struct {
	SecretID secret.ID `json:"secretId"`
	// RenewalCheck makes the run rotate only when the current version is due for renewal
	// (a certificate past its renewal point), instead of on every run.
	RenewalCheck bool `json:"renewalCheck,omitempty"`
	// StartAttributes says the starter set KeyturnSecretID and KeyturnStep (FirstStep)
	// on the run, as a schedule's action does since schedule format 2, so the run does
	// not send them again: each update is an event and a visibility write, and a
	// scheduled rotation is the most frequent workflow Keyturn runs. Without it (schedules
	// written before, other starters) the run sets both itself.
	StartAttributes bool `json:"startAttributes,omitempty"`
}

// Attributes are the search attributes a starter sets on a run whose input says
// StartAttributes (a schedule's action sets the same two in its own encoding).
func (in ScheduledInput) Attributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(SearchAttrSecretID.ValueSet(string(in.SecretID)), SearchAttrStep.ValueSet(in.FirstStep()))
}

// FirstStep is the KeyturnStep a run shows from its start: the renewal check, or the
// start of the rotation.
func (in ScheduledInput) FirstStep() string {
	if in.RenewalCheck {
		return ScheduledStepCheck
	}
	return ScheduledStepRotate
}

// ScheduledResult is what a scheduled run did.
type ScheduledResult struct {
	SecretID secret.ID `json:"secretId"`
	// Outcome is ScheduledSkipped, ScheduledNotDue or the rotation's own outcome.
	Outcome string `json:"outcome"`
	// Reason explains the outcome in words.
	Reason string `json:"reason,omitempty"`
	// DueAt is when the current version is due for renewal, from a renewal check.
	DueAt time.Time `json:"dueAt,omitzero"`
	// RotateWorkflowID is the rotation's workflow ID, rotate/<secret-id>.
	RotateWorkflowID string `json:"rotateWorkflowId"`
	// RotateRunID is the run this scheduled run started; empty when it started none.
	RotateRunID string `json:"rotateRunId,omitempty"`
	// Rotation is the started rotation's result, when it reported one.
	Rotation *RotateResult `json:"rotation,omitempty"`
}

// dueOptions bound the renewal check: it only reads the store, and a check that keeps
// failing must end the run (the next hourly check tries again), not retry forever.
var dueOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         retryPolicy(5, 10*time.Second),
}

// scheduledByKey is the search attribute Temporal sets on every workflow a schedule
// starts, holding the schedule's ID.
var scheduledByKey = temporal.NewSearchAttributeKeyKeyword("TemporalScheduledById")

// Scheduled is the action of a Keyturn schedule. It never rotates by itself: it starts
// the Rotate workflow as a child under rotate/<secret-id>, the one ID every starter uses,
// so a scheduled rotation can never run beside one started by hand or by an incident. If
// a rotation of the secret is already running the run is recorded as skipped. The child
// is abandoned on close, and cancelling this run stops only the waiting: a rotation, once
// started, always finishes or rolls back by itself.
func Scheduled(ctx workflow.Context, in ScheduledInput) (ScheduledResult, error) {
	res := ScheduledResult{SecretID: in.SecretID, RotateWorkflowID: RotateWorkflowID(in.SecretID)}

	// Step 0. Reject input no retry can fix.
	if err := in.SecretID.Validate(); err != nil {
		res.Outcome, res.Reason = OutcomeFailed, err.Error()
		return res, temporal.NewNonRetryableApplicationError("invalid input: "+err.Error(), ErrTypeInvalidInput, nil, res)
	}
	if !in.StartAttributes {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrSecretID.ValueSet(string(in.SecretID)))
	}
	// The first step is already shown when the starter set it.
	showFirst := setScheduledStep
	if in.StartAttributes {
		showFirst = setScheduledDetails
	}

	reason := ReasonScheduled
	// Step 1. A renewal check asks the worker whether the current version is due.
	if in.RenewalCheck {
		showFirst(ctx, in.SecretID, ScheduledStepCheck, "checking whether the current version is due for renewal")
		var due activities.DueResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, dueOptions), acts.Due, activities.DueInput{SecretID: in.SecretID}).Get(ctx, &due)
		if err != nil {
			res.Outcome, res.Reason = OutcomeFailed, "renewal check failed: "+activities.ErrorMessage(err)
			setScheduledStep(ctx, in.SecretID, OutcomeFailed, res.Reason)
			return res, temporal.NewNonRetryableApplicationError("renewal check of "+string(in.SecretID)+": "+activities.ErrorMessage(err), ErrTypeScheduledRotationFailed, nil, res)
		}
		res.DueAt = due.At
		if !due.Due {
			res.Outcome, res.Reason = ScheduledNotDue, due.Reason
			setScheduledStep(ctx, in.SecretID, ScheduledNotDue, due.Reason)
			return res, nil
		}
		reason = ReasonRenewal + ": " + due.Reason
	}

	// Step 2. Start the rotation as a child under the secret's one rotation ID.
	if in.RenewalCheck {
		setScheduledStep(ctx, in.SecretID, ScheduledStepRotate, "starting rotate/"+string(in.SecretID))
	} else {
		showFirst(ctx, in.SecretID, ScheduledStepRotate, "starting rotate/"+string(in.SecretID))
	}
	child, err := startScheduledRotation(ctx, in.SecretID, reason)
	if err != nil {
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			res.Outcome = ScheduledSkipped
			res.Reason = "a rotation of " + string(in.SecretID) + " is already running as " + res.RotateWorkflowID + "; this scheduled run started none and left it alone"
			setScheduledStep(ctx, in.SecretID, ScheduledSkipped, res.Reason)
			return res, nil
		}
		res.Outcome, res.Reason = OutcomeFailed, "could not start the rotation: "+activities.ErrorMessage(err)
		setScheduledStep(ctx, in.SecretID, OutcomeFailed, res.Reason)
		return res, temporal.NewNonRetryableApplicationError("scheduled rotation of "+string(in.SecretID)+": "+res.Reason, ErrTypeScheduledRotationFailed, nil, res)
	}
	res.RotateRunID = child.runID

	// Step 3. Wait for the rotation, so the run's result and the schedule's overlap
	// policy cover the whole rotation.
	var rotated RotateResult
	var rotateErr error
	cancelled := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(child.future, func(f workflow.Future) { rotateErr = f.Get(ctx, &rotated) })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
	sel.Select(ctx)
	if cancelled {
		res.Reason = "cancelled while waiting; the rotation goes on by itself"
		return res, temporal.NewCanceledError(res)
	}
	if rotateErr != nil {
		if details, ok := activities.DetailsOf[RotateResult](rotateErr); ok {
			rotated = details
		}
	}
	if rotated.Outcome != "" {
		res.Rotation = &rotated
		res.Outcome = rotated.Outcome
	}
	if rotateErr != nil {
		if res.Outcome == "" {
			res.Outcome = OutcomeFailed
		}
		res.Reason = activities.ErrorMessage(rotateErr)
		setScheduledStep(ctx, in.SecretID, res.Outcome, res.Reason)
		return res, temporal.NewNonRetryableApplicationError("scheduled rotation of "+string(in.SecretID)+" ended "+res.Outcome+": "+res.Reason, ErrTypeScheduledRotationFailed, nil, res)
	}
	res.Reason = "rotation " + res.RotateWorkflowID + " ended " + res.Outcome
	setScheduledStep(ctx, in.SecretID, res.Outcome, res.Reason)
	return res, nil
}

// scheduledChild is a rotation this run started.
type scheduledChild struct {
	future workflow.ChildWorkflowFuture
	runID  string
}

// startScheduledRotation starts Rotate as a child with the options every starter uses, and waits
// until the server has accepted or refused the start.
func startScheduledRotation(ctx workflow.Context, id secret.ID, reason string) (scheduledChild, error) {
	opts := RotateStartOptions(id, "")
	requestedBy := "schedule"
	if by, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(scheduledByKey); ok && by != "" {
		requestedBy = "schedule " + by
	}
	summary := opts.StaticSummary + " (scheduled)"
	if reason != ReasonScheduled {
		summary = opts.StaticSummary + " (renewal due)"
	}
	// A disconnected context: cancelling this run must not cancel a rotation halfway.
	// Abandon: closing this run (terminate, timeout) must not end it either.
	cctx, _ := workflow.NewDisconnectedContext(ctx)
	cctx = workflow.WithChildOptions(cctx, workflow.ChildWorkflowOptions{
		WorkflowID:            opts.ID,
		TaskQueue:             opts.TaskQueue,
		WorkflowIDReusePolicy: opts.WorkflowIDReusePolicy,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: opts.TypedSearchAttributes,
		StaticSummary:         summary,
	})
	f := workflow.ExecuteChildWorkflow(cctx, RotateWorkflowName, RotateInput{SecretID: id, Reason: reason, RequestedBy: requestedBy, Generation: RotateGeneration})
	var exec workflow.Execution
	if err := f.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		return scheduledChild{}, err
	}
	return scheduledChild{future: f, runID: exec.RunID}, nil
}

// setScheduledStep shows where the run stands in the KeyturnStep search attribute and
// the Web UI's current details.
func setScheduledStep(ctx workflow.Context, id secret.ID, step, detail string) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrStep.ValueSet(step))
	setScheduledDetails(ctx, id, step, detail)
}

// setScheduledDetails shows where the run stands in the Web UI's current details only,
// for a step KeyturnStep already shows.
func setScheduledDetails(ctx workflow.Context, id secret.ID, step, detail string) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** (scheduled): %s: %s", id, step, detail))
}
