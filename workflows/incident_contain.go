package workflows

import (
	"slices"
	"time"

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

// changeHedgedContain: a containment batch that runs much longer than the batches that
// finished before it gets a second copy (a hedge), and the first copy to finish counts.
// Runs that began before this change wait for every batch's own retries, as they did.
const changeHedgedContain = "hedged-contain"

// A batch whose worker died is otherwise retried only once its heartbeat has timed out
// (containHeartbeatTimeout, about three seconds with the server's timer): far longer than
// a whole batch takes. So a batch is hedged once it has run containHedgeFactor times the
// median batch of this incident, bounded by containHedgeMin and containHedgeMax; before
// any batch has finished, after containHedgeMax. Containing twice is harmless (every step
// is idempotent) and a worker's admin pools bound the connections either way.
const (
	containHedgeFactor = 1.5
	containHedgeMin    = 250 * time.Millisecond
	containHedgeMax    = time.Second
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
	running []*pendingBatch
	// versioned: the run has asked whether it hedges (asked at its first batch, so an
	// incident that contains nothing asks nothing).
	versioned, hedged bool
	// took are the durations of the batches finished so far, for the hedge's delay.
	took []time.Duration
	// losers are the copies cancelled because the other copy of their batch finished
	// first: drain waits for them, so no copy still runs when the rotations begin.
	losers []workflow.Future
	// timer wakes the pipeline at timerAt for the next hedge; nil when none is armed.
	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// pendingBatch is one batch: its secrets (from first in page) and its copies, one until
// it is hedged.
type pendingBatch struct {
	page    *scopePage
	first   int
	in      activities.ContainBatchInput
	started time.Time
	copies  []*batchCopy
}

// batchCopy is one ContainBatch activity of a batch.
type batchCopy struct {
	f      workflow.Future
	cancel workflow.CancelFunc
	done   bool
	err    error
	res    []activities.ContainedSecret
}

func newBatchPipeline(ctx workflow.Context, r *incidentRun) *batchPipeline {
	return &batchPipeline{ctx: ctx, actx: workflow.WithActivityOptions(ctx, containBatchOptions), r: r}
}

// add starts the batches of a page, waiting for a batch to finish whenever containBatches
// run.
func (b *batchPipeline) add(p *scopePage) {
	if !b.versioned {
		b.versioned = true
		b.hedged = workflow.GetVersion(b.ctx, changeHedgedContain, workflow.DefaultVersion, 1) == 1
	}
	ids := p.ids()
	for i := 0; i < len(ids); i += containBatch {
		for len(b.running) == containBatches {
			b.waitOne()
		}
		pb := &pendingBatch{page: p, first: i, started: workflow.Now(b.ctx),
			in: activities.ContainBatchInput{SecretIDs: ids[i:min(i+containBatch, len(ids))], Cause: b.r.cause()}}
		b.start(pb)
		b.running = append(b.running, pb)
	}
}

// start runs one more copy of pb.
func (b *batchPipeline) start(pb *pendingBatch) {
	c := &batchCopy{}
	actx := b.actx
	if b.hedged {
		actx, c.cancel = workflow.WithCancel(b.actx)
	}
	c.f = workflow.ExecuteActivity(actx, acts.ContainBatch, pb.in)
	pb.copies = append(pb.copies, c)
}

// drain waits for every batch started, and for the copies cancelled on the way.
func (b *batchPipeline) drain() {
	for len(b.running) > 0 {
		b.waitOne()
	}
	if b.cancelTimer != nil {
		b.cancelTimer()
		b.timer, b.cancelTimer = nil, nil
	}
	for _, f := range b.losers {
		_ = f.Get(b.ctx, nil)
	}
	b.losers = nil
}

// waitOne waits until at least one running batch has finished and records it. Without
// hedging (runs from before the change) that is the oldest batch, as it always was.
func (b *batchPipeline) waitOne() {
	if !b.hedged {
		pb := b.running[0]
		b.running = b.running[1:]
		c := pb.copies[0]
		c.err = c.f.Get(b.ctx, &c.res)
		b.collect(pb, c)
		return
	}
	for {
		sel := workflow.NewSelector(b.ctx)
		for _, pb := range b.running {
			for _, c := range pb.copies {
				if !c.done {
					sel.AddFuture(c.f, func(f workflow.Future) { c.err = f.Get(b.ctx, &c.res); c.done = true })
				}
			}
		}
		b.armHedge()
		fired := false
		if b.timer != nil {
			sel.AddFuture(b.timer, func(workflow.Future) { fired = true })
		}
		sel.Select(b.ctx)
		if fired {
			b.timer, b.cancelTimer = nil, nil
			b.hedgeDue()
		}
		if b.reap() {
			return
		}
	}
}

// reap records the batches that finished (a copy succeeded, or every copy failed) and
// reports whether there were any. The copies of a finished batch still running are
// cancelled and kept for drain.
func (b *batchPipeline) reap() bool {
	n := len(b.running)
	b.running = slices.DeleteFunc(b.running, func(pb *pendingBatch) bool {
		var won *batchCopy
		failed := 0
		for _, c := range pb.copies {
			switch {
			case c.done && c.err == nil && won == nil:
				won = c
			case c.done && c.err != nil:
				failed++
			}
		}
		if won == nil && failed < len(pb.copies) {
			return false
		}
		for _, c := range pb.copies {
			if !c.done {
				c.cancel()
				b.losers = append(b.losers, c.f)
			}
		}
		if won == nil {
			won = pb.copies[0]
		} else {
			b.took = append(b.took, workflow.Now(b.ctx).Sub(pb.started))
		}
		b.collect(pb, won)
		return true
	})
	return len(b.running) < n
}

// hedgeDelay is how long a batch runs before it is hedged.
func (b *batchPipeline) hedgeDelay() time.Duration {
	if len(b.took) == 0 {
		return containHedgeMax
	}
	took := slices.Clone(b.took)
	slices.Sort(took)
	d := time.Duration(float64(took[len(took)/2]) * containHedgeFactor)
	return min(max(d, containHedgeMin), containHedgeMax)
}

// nextHedge is when the next running batch with one copy is due for its hedge.
func (b *batchPipeline) nextHedge() (time.Time, bool) {
	var next time.Time
	for _, pb := range b.running {
		if len(pb.copies) > 1 || pb.copies[0].done {
			continue
		}
		if at := pb.started.Add(b.hedgeDelay()); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// armHedge keeps one timer armed for the next hedge. A cancelled incident hedges nothing.
func (b *batchPipeline) armHedge() {
	at, ok := b.nextHedge()
	if b.timer != nil && ok && at.Equal(b.timerAt) {
		return
	}
	if b.cancelTimer != nil {
		b.cancelTimer()
		b.timer, b.cancelTimer = nil, nil
	}
	if !ok || b.ctx.Err() != nil {
		return
	}
	var tctx workflow.Context
	tctx, b.cancelTimer = workflow.WithCancel(b.ctx)
	b.timer, b.timerAt = workflow.NewTimer(tctx, max(at.Sub(workflow.Now(b.ctx)), time.Millisecond)), at
}

// hedgeDue starts a second copy of every batch due for one.
func (b *batchPipeline) hedgeDue() {
	if b.ctx.Err() != nil {
		return
	}
	now := workflow.Now(b.ctx)
	for _, pb := range b.running {
		if len(pb.copies) == 1 && !pb.copies[0].done && !now.Before(pb.started.Add(b.hedgeDelay())) {
			workflow.GetLogger(b.ctx).Info("containment batch hedged: a second copy runs",
				"secrets", len(pb.in.SecretIDs), "first", pb.in.SecretIDs[0], "running", now.Sub(pb.started))
			b.start(pb)
		}
	}
}

// collect records a batch's containment from the copy that finished; a batch that failed
// contains nothing here, and each of its secrets' own rotation contains it instead.
func (b *batchPipeline) collect(pb *pendingBatch, c *batchCopy) {
	if c.err != nil {
		return
	}
	for j, s := range c.res {
		if s.Error == "" && !s.At.IsZero() {
			ps := &pb.page.secrets[pb.first+j]
			ps.ContainedMs = b.r.since(s.At)
			ps.Ended = endedLines(s.Ended)
			b.r.report.addContained(ps.ContainedMs)
		}
	}
}
