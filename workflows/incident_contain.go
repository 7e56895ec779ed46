package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
)

// containBatch is how many secrets one ContainBatch activity contains, and
// containBatches how many run at once: with activities.DefaultContainParallelism each,
// that is at most 64 admin connections to the targets at a time.
const (
	containBatch   = 100
	containBatches = 4
)

// containAll contains the whole scope in batch activities: the first thing an incident in
// contain mode does, since every old credential must be refused as soon as possible and a
// revocation is much cheaper than a whole rotation. It returns, by scope index, when each
// secret was contained (ms after the start); 0 means its own rotation contains it.
func (r *incidentRun) containAll(ctx workflow.Context) []int64 {
	all := scopePage{secrets: make([]PageSecret, len(r.carry.Scope))}
	for i, id := range r.carry.Scope {
		all.secrets[i].ID = id
	}
	batches := newBatchPipeline(ctx, r)
	batches.add(&all)
	batches.drain()
	out := make([]int64, len(r.carry.Scope))
	r.carry.Ended = make([][]string, len(r.carry.Scope))
	for i, s := range all.secrets {
		out[i], r.carry.Ended[i] = s.ContainedMs, s.Ended
	}
	return out
}

// batchPipeline runs ContainBatch activities over pages as they are read, containBatches
// at a time, and writes each secret's containment into its page.
type batchPipeline struct {
	ctx     workflow.Context
	actx    workflow.Context
	r       *incidentRun
	running []pendingBatch
}

type pendingBatch struct {
	page  *scopePage
	first int
	f     workflow.Future
}

func newBatchPipeline(ctx workflow.Context, r *incidentRun) *batchPipeline {
	return &batchPipeline{ctx: ctx, actx: workflow.WithActivityOptions(ctx, containBatchOptions), r: r}
}

// add starts the batches of a page, waiting for the oldest batch whenever containBatches
// run.
func (b *batchPipeline) add(p *scopePage) {
	ids := p.ids()
	for i := 0; i < len(ids); i += containBatch {
		if len(b.running) == containBatches {
			b.collect(b.running[0])
			b.running = b.running[1:]
		}
		in := activities.ContainBatchInput{SecretIDs: ids[i:min(i+containBatch, len(ids))], Cause: b.r.cause()}
		b.running = append(b.running, pendingBatch{p, i, workflow.ExecuteActivity(b.actx, acts.ContainBatch, in)})
	}
}

// drain waits for every batch started.
func (b *batchPipeline) drain() {
	for _, pb := range b.running {
		b.collect(pb)
	}
	b.running = nil
}

// collect records a batch's containment; a batch that failed contains nothing here, and
// each of its secrets' own rotation contains it instead.
func (b *batchPipeline) collect(pb pendingBatch) {
	var res []activities.ContainedSecret
	if err := pb.f.Get(b.ctx, &res); err != nil {
		return
	}
	for j, c := range res {
		if c.Error == "" && !c.At.IsZero() {
			s := &pb.page.secrets[pb.first+j]
			s.ContainedMs = b.r.since(c.At)
			s.Ended = endedLines(c.Ended)
			b.r.report.addContained(s.ContainedMs)
		}
	}
}
