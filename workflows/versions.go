package workflows

import (
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
)

// rotateGeneration asks, once per run, which generation it has.
func rotateGeneration(ctx workflow.Context) workflow.Version {
	return workflow.GetVersion(ctx, changeRotateGeneration, workflow.DefaultVersion, genLean)
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
// sends them with the next step's, so a rotation updates them once per step.
func (r *rotateRun) upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	updates = append(r.heldAttrs, updates...)
	r.heldAttrs = nil
	if len(updates) > 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, updates...)
	}
}

// hold keeps a search attribute update for the next one (lean runs), or sends it now.
func (r *rotateRun) hold(ctx workflow.Context, update temporal.SearchAttributeUpdate) {
	if r.generation >= genLean {
		r.heldAttrs = append(r.heldAttrs, update)
		return
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, update)
}
