package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
)

// containBatch is how many secrets one ContainBatch activity contains, and
// containBatches how many run at once: with activities.DefaultContainParallelism each,
// that is at most 64 secrets worked on at a time, and 32 more while batches are hedged
// (containHedgesAtOnce). Each worker's admin pool per target bounds its own connections.
const (
	containBatch   = 100
	containBatches = 4
)

// changeHedgedContain: a containment batch that runs much longer than the batches that
// finished before it gets a second copy (a hedge), and the first copy to finish counts.
// An incident asks at its first batch; one that had contained before this change replays
// as it ran, waiting for every batch's own retries. Version hedgeTuned (2):
//   - looks at every batch the workflow task brought finished before it hedges any
//     (version 1 handled one finished batch at a time, so a task that came late hedged,
//     and at once cancelled, batches that had finished in it);
//   - hedges after containHedgeFactor times the 90th percentile of the batches finished,
//     not the median: on cores the targets and the attackers saturate, healthy batches
//     of 10,000 secrets took 0.38 s p50 and 0.65 s p90, so one in seven passed 1.5 times
//     the median and ran twice, on cores that had no time to spare.
const (
	changeHedgedContain = "hedged-contain"
	hedgeTuned          = 2
)

// A batch whose worker died is otherwise retried only once its heartbeat has timed out
// (containHeartbeatTimeout): far longer than a whole batch takes. So a batch is hedged
// once it has run containHedgeFactor times the 90th percentile of this incident's
// finished batches (the median before hedgeTuned; at least containHedgeMin), or
// containHedgeFirst before any batch has finished. A batch whose hedge would come later
// than containHeartbeatTimeout is not hedged: the timeout retries a dead worker's copy
// as soon, and on targets that slow a second copy would only double the work. At most
// containHedgesAtOnce batches run a second copy at a time, so a slow first wave costs at
// most that much extra work. Containing twice is harmless: every step is idempotent.
const (
	containHedgeFactor  = 1.5
	containHedgeMin     = 250 * time.Millisecond
	containHedgeFirst   = time.Second
	containHedgesAtOnce = 2
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
	// incident that contains nothing asks nothing), and whether as hedgeTuned says.
	versioned, hedged, tuned bool
	// took are the durations of the batches finished so far, for the hedge's delay.
	took []time.Duration
	// losers are the copies cancelled because the other copy of their batch finished
	// first: drain waits until the server has ended them before the rotations begin. (A
	// copy on a worker that is alive but stalled learns it has ended at its next heartbeat,
	// within half a second, and may finish the statement it is in: the exposure a retried
	// batch always had.)
	losers []loser
	// timer wakes the pipeline at timerAt for the next hedge; nil when none is armed.
	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
}

// pendingBatch is one batch: its secrets (from first in page) and its copies, one until
// it is hedged.
type pendingBatch struct {
	page   *scopePage
	first  int
	in     activities.ContainBatchInput
	copies []*batchCopy
}

// batchCopy is one ContainBatch activity of a batch.
type batchCopy struct {
	f       workflow.Future
	cancel  workflow.CancelFunc
	started time.Time
	done    bool
	err     error
	res     []activities.ContainedSecret
}

// loser is a copy cancelled because another copy of its batch finished first.
type loser struct {
	pb *pendingBatch
	c  *batchCopy
}

func newBatchPipeline(ctx workflow.Context, r *incidentRun) *batchPipeline {
	return &batchPipeline{ctx: ctx, actx: workflow.WithActivityOptions(ctx, containBatchOptions), r: r}
}

// add starts the batches of a page, waiting for a batch to finish whenever containBatches
// run.
func (b *batchPipeline) add(p *scopePage) {
	if !b.versioned {
		b.versioned = true
		v := workflow.GetVersion(b.ctx, changeHedgedContain, workflow.DefaultVersion, hedgeTuned)
		b.hedged, b.tuned = v >= 1, v >= hedgeTuned
	}
	ids := p.ids()
	for i := 0; i < len(ids); i += containBatch {
		for len(b.running) == containBatches {
			b.waitOne()
		}
		pb := &pendingBatch{page: p, first: i,
			in: activities.ContainBatchInput{SecretIDs: ids[i:min(i+containBatch, len(ids))], Cause: b.r.cause()}}
		b.start(pb)
		b.running = append(b.running, pb)
	}
}

// start runs one more copy of pb.
func (b *batchPipeline) start(pb *pendingBatch) {
	c := &batchCopy{started: workflow.Now(b.ctx)}
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
	for _, l := range b.losers {
		l.c.err = l.c.f.Get(b.ctx, &l.c.res)
		if l.c.err == nil {
			b.collect(l.pb, l.c) // what only the slower copy contained, or ended, counts too
		}
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
		// What this workflow task brought finished counts before any hedge: a task that
		// came late would otherwise find those batches overdue.
		if b.tuned && b.takeReady() && b.reap() {
			return
		}
		// Hedges already due start now: a workflow task that came late (its worker died)
		// finds them overdue, and a timer, however short, would cost another round trip.
		b.hedgeDue()
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
		}
		if b.reap() {
			return
		}
	}
}

// takeReady notes every running copy whose activity has ended, as far as this workflow
// task knows, and reports whether there was any.
func (b *batchPipeline) takeReady() bool {
	took := false
	for _, pb := range b.running {
		for _, c := range pb.copies {
			if !c.done && c.f.IsReady() {
				c.err, c.done, took = c.f.Get(b.ctx, &c.res), true, true
			}
		}
	}
	return took
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
		if b.tuned {
			// Both copies may have finished in the same task: the faster one's time counts.
			for _, c := range pb.copies {
				if c.done && c.err == nil && b.duration(c) < b.duration(won) {
					won = c
				}
			}
		}
		for _, c := range pb.copies {
			if !c.done {
				c.cancel()
				b.losers = append(b.losers, loser{pb, c})
			}
		}
		if won == nil {
			won = pb.copies[0]
		} else {
			b.took = append(b.took, b.duration(won))
		}
		b.collect(pb, won)
		for _, c := range pb.copies {
			if c != won && c.done && c.err == nil {
				b.collect(pb, c) // what only the other copy contained, or ended, counts too
			}
		}
		return true
	})
	return len(b.running) < n
}

// duration is how long a copy that succeeded took: to the last containment it reports
// (the worker's clock), or to now when it reports none. Not simply to now: a workflow task
// that waited (on a dead worker's sticky queue, say) would make every batch it saw finish
// look that much slower, and hold back the hedges the wait made urgent.
func (b *batchPipeline) duration(c *batchCopy) time.Duration {
	end := workflow.Now(b.ctx)
	var last time.Time
	for _, s := range c.res {
		if s.At.After(last) {
			last = s.At
		}
	}
	if !last.IsZero() && last.Before(end) {
		end = last
	}
	return max(end.Sub(c.started), 0)
}

// hedgeDelay is how long a batch runs before it is hedged, given how long the batches
// that finished took (tuned: as hedgeTuned says); false when it is not hedged at all.
func hedgeDelay(took []time.Duration, tuned bool) (time.Duration, bool) {
	if len(took) == 0 {
		return containHedgeFirst, true
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	typical := sorted[len(sorted)/2]
	if tuned {
		// The nearest rank at or below the 90th percentile, and never below the median:
		// the slower of two, the median of three, and never the slowest of ten or more,
		// which may be a batch that waited out a dead worker.
		typical = sorted[max((len(sorted)-1)*9/10, len(sorted)/2)]
	}
	d := max(time.Duration(float64(typical)*containHedgeFactor), containHedgeMin)
	return d, d <= containHeartbeatTimeout
}

// hedgeable are the running batches that may get a second copy now or later: one copy,
// still running, and fewer than containHedgesAtOnce batches running two.
func (b *batchPipeline) hedgeable() []*pendingBatch {
	var out []*pendingBatch
	hedged := 0
	for _, pb := range b.running {
		switch {
		case len(pb.copies) > 1:
			hedged++
		case !pb.copies[0].done:
			out = append(out, pb)
		}
	}
	if hedged >= containHedgesAtOnce {
		return nil
	}
	return out
}

// nextHedge is when the next batch is due for its hedge.
func (b *batchPipeline) nextHedge() (time.Time, bool) {
	d, ok := hedgeDelay(b.took, b.tuned)
	if !ok {
		return time.Time{}, false
	}
	var next time.Time
	for _, pb := range b.hedgeable() {
		if at := pb.copies[0].started.Add(d); next.IsZero() || at.Before(next) {
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

// hedgeDue starts a second copy of the batches due for one, oldest first, as many as
// containHedgesAtOnce allows.
func (b *batchPipeline) hedgeDue() {
	d, ok := hedgeDelay(b.took, b.tuned)
	if !ok || b.ctx.Err() != nil {
		return
	}
	now := workflow.Now(b.ctx)
	for _, pb := range b.hedgeable() {
		if now.Before(pb.copies[0].started.Add(d)) || len(b.hedgeable()) == 0 {
			continue // not due yet, or the budget is spent
		}
		workflow.GetLogger(b.ctx).Info("containment batch hedged: a second copy runs",
			"secrets", len(pb.in.SecretIDs), "first", pb.in.SecretIDs[0], "running", now.Sub(pb.copies[0].started))
		b.start(pb)
	}
}

// collect records a batch's containment from a copy that finished; a batch that failed
// contains nothing here, and each of its secrets' own rotation contains it instead. For
// a batch with two copies it is called for each copy that completed: a secret counts once,
// at the earliest time a copy contained it, with the sessions either copy ended.
func (b *batchPipeline) collect(pb *pendingBatch, c *batchCopy) {
	if c.err != nil {
		return
	}
	for j, s := range c.res {
		if s.Error != "" || s.At.IsZero() || pb.first+j >= len(pb.page.secrets) {
			continue
		}
		ps := &pb.page.secrets[pb.first+j]
		ms := b.r.since(s.At)
		for _, line := range endedLines(s.Ended) {
			if !slices.Contains(ps.Ended, line) {
				ps.Ended = append(ps.Ended, line)
			}
		}
		switch {
		case ps.ContainedMs == 0:
			ps.ContainedMs = ms
			b.r.report.addContained(ms)
		case ms < ps.ContainedMs:
			ps.ContainedMs = ms // counted already; the report's latest time stays an upper bound
		}
	}
}
