package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// changeRotateGeneration is the change ID of the Rotate workflow's generations: one
// GetVersion at the start of every run says which behaviour it has. Each GetVersion costs
// a run two history events (a marker and an update of the TemporalChangeVersion search
// attribute), so a new behaviour is a new generation of this one ID rather than an ID of
// its own. The name is the first generation's, kept because recorded histories carry it.
const changeRotateGeneration = "audit-trail"

// The generations of Rotate. A run keeps the generation it began with for its whole life,
// so its history replays on newer code.
const (
	// genAudited: the run reports its end, the operators' signals, the grace period and
	// the revoke gate to the audit trail (its steps record themselves, in their
	// activities).
	genAudited workflow.Version = 1
	// genLean cuts the server's work per rotation (issue 14):
	//   - the older changes (first-rotation-no-grace, abort-ends-canceled, durable-retries,
	//     notify, revoke-gate) are on without asking GetVersion for each;
	//   - the search attributes change only when they do: no update for the plan step (the
	//     starter sets it), and the kind goes with the create step's update.
	//
	// A run records its generation when it starts; a worker older than that generation
	// fails the run's workflow tasks (unknown version) until a newer worker takes them, so
	// a rolling upgrade briefly retries workflow tasks and loses nothing.
	genLean workflow.Version = 2
	// genQuiet keeps the search attributes still while the rotation runs its steps
	// (issue 14: 31 history events per rotation, against 38 for genLean):
	//   - KeyturnStep says running from the start (the starter sets it) and changes only
	//     when the rotation waits (grace, revoke gate, purge window) and when it ends; the
	//     status query, the Web UI's details and its pending activity name the exact step;
	//   - a run whose starter names this generation in its input (RotateInput.Generation)
	//     records no version marker;
	//   - a rotation that ends with its revoke records its end in the Revoke activity
	//     instead of a local activity of its own.
	genQuiet workflow.Version = 3
	// genLocal runs Promote's first attempt on the worker that runs the workflow, as a
	// local activity (issue 14, items 5 and 8: 26 history events per rotation instead
	// of 31); an attempt that fails or times out is retried as the regular activity
	// (quickStep). Create, Test and Revoke stay regular (see run and quickStep).
	genLocal workflow.Version = 4
	// newestGeneration is the newest generation this code runs.
	newestGeneration = genLocal
	// firstNamedGeneration is the first generation a starter could name in its input.
	firstNamedGeneration = genQuiet
)

// RotateGeneration is the generation a starter asks for in RotateInput.Generation: the
// newest this code runs.
const RotateGeneration = int(newestGeneration)

// rotateGeneration says, once per run, which generation it has. A run whose input names
// its generation records no marker for it (two history events fewer): the SDK does not
// check version markers against the code on replay, so a replay finds the marker only if
// an older worker, which ignores the input field, began the run and recorded one.
func rotateGeneration(ctx workflow.Context, in RotateInput) workflow.Version {
	asked := workflow.Version(in.Generation)
	if asked > newestGeneration {
		// A newer starter than this worker: panicking fails the workflow task, which a
		// newer worker then takes, as GetVersion does for a version it does not know.
		panic(fmt.Sprintf("rotation generation %d is newer than this worker's (%d); upgrade the worker", asked, newestGeneration))
	}
	if asked < firstNamedGeneration { // none named, or one Validate refuses: the run asks as before
		return workflow.GetVersion(ctx, changeRotateGeneration, workflow.DefaultVersion, newestGeneration)
	}
	if workflow.IsReplaying(ctx) {
		if v := workflow.GetVersion(ctx, changeRotateGeneration, workflow.DefaultVersion, newestGeneration); v != workflow.DefaultVersion {
			return v
		}
	}
	return asked
}

// changed reports whether the run has the behaviour of changeID, one of the changes that
// came before genLean: a lean run has them all, an older run asks as it always did.
func (r *rotateRun) changed(ctx workflow.Context, changeID string) bool {
	if r.generation >= genLean {
		return true
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == 1
}

// upsert updates search attributes. A lean run holds updates back while planning and
// sends them with the next update, so a rotation updates them once per step (genLean) or
// only when it waits and when it ends (genQuiet).
func (r *rotateRun) upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	updates = append(r.heldAttrs, updates...)
	r.heldAttrs = nil
	if len(updates) > 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, updates...)
	}
}

// hold keeps a search attribute update for the next one (lean and quiet runs), or sends
// it now.
func (r *rotateRun) hold(ctx workflow.Context, update temporal.SearchAttributeUpdate) {
	if r.generation >= genLean {
		r.heldAttrs = append(r.heldAttrs, update)
		return
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, update)
}

// showStep keeps the KeyturnStep search attribute true as the run moves to step name. A
// quiet run shows running for the steps it does not wait in, so it updates the attribute
// only on entering and leaving a wait; older runs show every step.
func (r *rotateRun) showStep(ctx workflow.Context, name string) {
	if r.generation < genQuiet {
		r.upsert(ctx, SearchAttrStep.ValueSet(name))
		return
	}
	shown := StepRunning
	if waits(name) {
		shown = name
	}
	if shown != r.shownStep {
		r.shownStep = shown
		r.upsert(ctx, SearchAttrStep.ValueSet(shown))
	}
}

// waits reports whether a rotation can stay in step name for minutes or days: an operator
// looks for these in the Web UI's list (KeyturnStep="grace").
func waits(name string) bool {
	return name == StepGrace || name == StepRevokeGate || name == StepPurge
}
