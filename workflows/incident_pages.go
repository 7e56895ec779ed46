package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

// changeScopePages: an incident reads its scope in pages and hands each page's rotations
// to an IncidentPage child, so no payload and no run's history grows with the scope's
// size beyond Temporal's limits (a 2 MiB payload, 51,200 events). Incidents that began
// before this change carry the whole scope from run to run (continue-as-new), so their
// histories replay.
const changeScopePages = "scope-pages"

// IncidentPageWorkflowName is the registered name of the workflow that rotates one page
// of an incident's scope.
const IncidentPageWorkflowName = "IncidentPage"

// incidentPageID is the workflow ID of page k (from 0) of an incident.
func incidentPageID(incidentID string, k int) string {
	return fmt.Sprintf("%s/page/%d", IncidentWorkflowID(incidentID), k+1)
}

// pageSize is how many secrets one page holds: one ScopePage result, one IncidentPage
// child's input and result, and that child's children (far below Temporal's 2,000
// pending children per workflow). A variable so tests can page small scopes.
var pageSize = secretsPerRun

// MaxIncidentScope bounds an incident's scope. The incident's own history keeps a few
// hundred bytes per secret (its scope pages, containment batches and page results) and
// Temporal refuses a history above 50 MiB; a larger scope is refused before anything
// changes, with the advice to split it.
const MaxIncidentScope = 100_000

// IncidentPageInput is the work of one page of an incident: the incident's input (without
// its plan) and, for each secret, what the incident did to it before the page began.
type IncidentPageInput struct {
	Incident IncidentInput `json:"incident"`
	// Page is the page's index (from 0), which its progress signals name.
	Page      int          `json:"page"`
	StartedAt time.Time    `json:"startedAt"`
	Secrets   []PageSecret `json:"secrets"`
}

// PageSecret is one secret of a page and what the incident's first phase did to it.
type PageSecret struct {
	ID   secret.ID `json:"id"`
	Kind string    `json:"k"`
	// ContainedMs is when the batch containment contained it (0: it did not).
	ContainedMs int64 `json:"c,omitempty"`
	// Ended are the uses the batch containment ended (endedLines).
	Ended []string `json:"u,omitempty"`
	// Stopped says a rotation in flight was stopped for the incident.
	Stopped bool `json:"s,omitempty"`
}

// IncidentPage rotates one page of an incident's scope (contain mode: after the whole
// scope was contained) with the incident's parallelism, and returns a report per secret
// in page order. Its children are the secrets' Rotate workflows, as an incident's were
// before pages; its parent, the Incident, sends the notifications and counts.
func IncidentPage(ctx workflow.Context, in IncidentPageInput) ([]SecretReport, error) {
	r := &incidentRun{in: in.Incident}
	r.carry.StartedAt = in.StartedAt
	for _, s := range in.Secrets {
		r.carry.Scope = append(r.carry.Scope, s.ID)
		r.carry.Kinds = append(r.carry.Kinds, s.Kind)
		r.carry.Contained = append(r.carry.Contained, s.ContainedMs)
		r.carry.Ended = append(r.carry.Ended, s.Ended)
		if s.Stopped {
			r.carry.Stopped = append(r.carry.Stopped, s.ID)
		}
	}
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil {
		r.secretDone = func(ctx workflow.Context) {
			if r.report.Done%progressEvery == 0 && r.report.Done < len(in.Secrets) {
				// Not waited for: progress is a courtesy, and a parent that ended
				// meanwhile must not fail the page.
				workflow.SignalExternalWorkflow(ctx, parent.ID, parent.RunID, signalPageProgress,
					pageProgress{Page: in.Page, Progress: r.report.IncidentProgress})
			}
		}
	}
	r.work(ctx, 0, len(in.Secrets))
	// A cancelled page stops starting rotations: the secrets it never started say so.
	for i := range r.carry.Done {
		if r.carry.Done[i].ID == "" {
			r.carry.Done[i] = SecretReport{ID: in.Secrets[i].ID, Outcome: OutcomeAborted, Superseded: in.Secrets[i].Stopped,
				ContainedMs: in.Secrets[i].ContainedMs, Batch: in.Secrets[i].ContainedMs > 0, Ended: in.Secrets[i].Ended}
		}
	}
	return r.carry.Done, nil
}

// A page tells its incident how far it got every progressEvery secrets, so the
// incident's progress query moves while a page works instead of once per page.
const (
	signalPageProgress = "page-progress"
	progressEvery      = 50
)

// pageProgress is a page's progress so far: its own counts (Done, Rotated, ... of its
// secrets; Contained counts those its rotations contained, not the batch).
type pageProgress struct {
	Page     int              `json:"page"`
	Progress IncidentProgress `json:"progress"`
}

// livePage is the progress of the page being rotated; page -1 when none is.
type livePage struct {
	page     int
	progress IncidentProgress
}

// progress is the incident's progress: what its finished pages did, and what the page
// being rotated said last.
func (r *incidentRun) progress() IncidentProgress {
	p := r.report.IncidentProgress
	l := r.live.progress
	p.Done += l.Done
	p.Contained += l.Contained
	p.Rotated += l.Rotated
	p.Failed += l.Failed
	p.NeedsHuman += l.NeedsHuman
	p.AllContainedMs = max(p.AllContainedMs, l.AllContainedMs)
	p.AllRotatedMs = max(p.AllRotatedMs, l.AllRotatedMs)
	return p
}

// followPages keeps r.live up to date with the progress signals of the page being
// rotated; a late signal from a page that has finished is dropped.
func (r *incidentRun) followPages(ctx workflow.Context) {
	r.live.page = -1
	ch := workflow.GetSignalChannel(ctx, signalPageProgress)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p pageProgress
			if !ch.Receive(ctx, &p) {
				return
			}
			if p.Page == r.live.page && p.Progress.Done > r.live.progress.Done {
				r.live.progress = p.Progress
			}
		}
	})
}

// scopePage is a page of the scope as the incident's first phase leaves it.
type scopePage struct {
	secrets []PageSecret
}

func (p *scopePage) ids() []secret.ID {
	ids := make([]secret.ID, len(p.secrets))
	for i, s := range p.secrets {
		ids[i] = s.ID
	}
	return ids
}

// runPaged is the first (and only) run of an incident that reads its scope in pages.
// Phase one reads every page and, in contain mode, contains it while its schedules are
// paused (the order of containWhilePausing, page by page); in rotate mode it pauses and
// stops each page's schedules and rotations. Phase two rotates the pages one after the
// other, each in an IncidentPage child.
func (r *incidentRun) runPaged(ctx, actx workflow.Context) (IncidentReport, error) {
	r.paged = true
	r.carry = IncidentCarry{StartedAt: r.report.StartedAt}
	pages, what, err := r.readAndContain(ctx, actx)
	if err != nil && what == "" {
		return r.report, err // refused before anything changed
	}
	if err != nil {
		return r.abort(ctx, what, err)
	}
	r.report.Phase = PhaseWorking
	r.followPages(ctx)
	for k := range pages {
		if ctx.Err() != nil {
			break // cancelled: the pages not started are not counted as worked on
		}
		r.live = livePage{page: k}
		r.workPage(ctx, k, &pages[k])
		r.live = livePage{page: -1}
	}
	if err := r.resumeSchedules(ctx); err != nil {
		return r.abort(ctx, "resume schedules", err)
	}
	r.report.Phase = PhaseDone
	r.report.FinishedAt = workflow.Now(ctx)
	r.listSecrets()
	var err2 error
	if ctx.Err() != nil {
		// Cancelled: the report says what was done before; the workflow ends cancelled.
		err2 = temporal.NewCanceledError(r.report)
	} else if r.report.Failed > 0 {
		err2 = temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("incident %s: %d of %d secrets failed; see the report", r.in.IncidentID, r.report.Failed, r.report.Total), ErrTypeFailed, nil, r.report)
	}
	r.finishNotifying(ctx, err2)
	return r.report, err2
}

// readAndContain is phase one. On a failure it returns what failed, for abort.
func (r *incidentRun) readAndContain(ctx, actx workflow.Context) ([]scopePage, string, error) {
	contain := r.in.Mode == ModeContain
	var (
		pages   []scopePage
		pausing []workflow.Future
		after   secret.ID
	)
	batches := newBatchPipeline(ctx, r)
	// fail ends phase one early: the batches and pauses already started are waited for,
	// so the report says what they contained and paused.
	fail := func(what string, err error) ([]scopePage, string, error) {
		batches.drain()
		for _, f := range pausing {
			_ = f.Get(ctx, nil)
		}
		if what != "" {
			what += r.containedBefore(contain)
		}
		return nil, what, err
	}
	for {
		var page activities.ScopePage
		in := activities.ScopePageInput{Selector: r.in.Selector, After: after, Limit: pageSize}
		if err := workflow.ExecuteActivity(actx, incidentActs.ScopePage, in).Get(ctx, &page); err != nil {
			if len(pages) == 0 {
				return nil, "", err // nothing changed yet: the error as it is
			}
			return fail("read the scope after "+string(after), err)
		}
		if len(pages) == 0 {
			if page.Total == 0 {
				return nil, "", temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("the scope %q matches no secret in the worker's inventory; nothing was changed", r.in.Selector), ErrTypeEmptyScope, nil)
			}
			if page.Total > MaxIncidentScope {
				return nil, "", temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("the scope %q holds %d secrets, more than the %d one incident can work on; nothing was changed: split it (by prefix, tag or kind) into several incidents", r.in.Selector, page.Total, MaxIncidentScope), ErrTypeInvalidInput, nil)
			}
			r.report.Total = page.Total
			r.notify(ctx, notify.IncidentStarted, "")
			r.report.Phase = PhaseContain
			if !contain {
				r.report.Phase = PhasePause
			}
		}
		if len(page.Secrets) == 0 {
			break // the inventory shrank between two pages
		}
		p := scopePage{}
		for _, s := range page.Secrets {
			p.secrets = append(p.secrets, PageSecret{ID: s.ID, Kind: s.Kind})
		}
		pages = append(pages, p)
		pg := &pages[len(pages)-1]
		if contain {
			// As containWhilePausing: stop, then contain while pausing.
			stopped, err := r.stopRotationsOf(ctx, actx, pg.ids())
			if err != nil {
				return fail("stop rotations in flight", err)
			}
			markStopped(pg, stopped)
			pausing = append(pausing, r.pauseSchedulesOf(ctx, pg.ids()))
			batches.add(pg)
		}
		if !page.More {
			break
		}
		after = page.Secrets[len(page.Secrets)-1].ID
	}
	batches.drain()
	// The scope is what the pages held (the inventory may have changed while they were
	// read); the plan is compared with that.
	var scope []secret.ID
	for k := range pages {
		scope = append(scope, pages[k].ids()...)
	}
	r.report.Total = len(scope)
	r.carry.ScopeDiff = diffScope(scope, r.in.Planned).listed()
	r.report.ScopeDiff = r.carry.ScopeDiff
	if !contain {
		// Rotate mode: nothing is urgent, so the whole scope is read before anything
		// changes; then every page's schedules are paused, and only then are the
		// rotations in flight stopped (their clean-up comes with each secret's rotation).
		for k := range pages {
			if err := r.pauseSchedulesOf(ctx, pages[k].ids()).Get(ctx, nil); err != nil {
				return nil, r.pauseFailed(), err
			}
		}
		for k := range pages {
			stopped, err := r.stopRotationsOf(ctx, actx, pages[k].ids())
			if err != nil {
				return nil, "stop rotations in flight" + stoppedBefore(pages[:k+1]), err
			}
			markStopped(&pages[k], stopped)
		}
		return pages, "", nil
	}
	r.report.Contained, r.report.AllContainedMs = 0, 0
	for k := range pages {
		for _, s := range pages[k].secrets {
			r.report.addContained(s.ContainedMs)
		}
	}
	var pauseErr error
	for _, f := range pausing {
		if err := f.Get(ctx, nil); err != nil && pauseErr == nil {
			pauseErr = err
		}
	}
	if pauseErr != nil {
		return nil, r.pauseFailed() + "; " + r.containedSoFar(), pauseErr
	}
	// A schedule may have started a rotation between a page's stop and its pause: it is
	// stopped too, and its secret's own rotation contains it again.
	for k := range pages {
		again, err := r.stopRotationsOf(ctx, actx, pages[k].ids())
		if err != nil {
			return nil, "stop rotations started while the schedules were being paused; " + r.containedSoFar(), err
		}
		if len(again) == 0 {
			continue
		}
		markStopped(&pages[k], again)
		for i := range pages[k].secrets {
			if slices.Contains(again, pages[k].secrets[i].ID) && pages[k].secrets[i].ContainedMs > 0 {
				pages[k].secrets[i].ContainedMs = 0
				r.report.Contained--
			}
		}
	}
	r.report.AllContainedMs = 0
	for k := range pages {
		for _, s := range pages[k].secrets {
			r.report.AllContainedMs = max(r.report.AllContainedMs, s.ContainedMs)
		}
	}
	r.settle(ctx, r.report.Contained)
	return pages, "", nil
}

// containedBefore says, for an incident that fails while its scope is read, how much of
// it the pages read so far contained; "" when nothing was contained.
func (r *incidentRun) containedBefore(any bool) string {
	if !any || r.report.Contained == 0 {
		return ""
	}
	return fmt.Sprintf("; %d secrets of the pages read before were contained, the others were not: run the incident again", r.report.Contained)
}

// stoppedBefore names, for an incident in rotate mode that fails while stopping the
// rotations in flight, those it had stopped: their clean-up (Supersede) did not run.
func stoppedBefore(pages []scopePage) string {
	var ids []string
	for _, p := range pages {
		for _, s := range p.secrets {
			if s.Stopped {
				ids = append(ids, string(s.ID))
			}
		}
	}
	if len(ids) == 0 {
		return ""
	}
	more := ""
	if len(ids) > 20 {
		ids, more = ids[:20], fmt.Sprintf(" and %d more", len(ids)-20)
	}
	return fmt.Sprintf("; the rotations in flight of %s%s were stopped without their clean-up: versions they made may be left on their targets until those secrets are rotated", strings.Join(ids, ", "), more)
}

func markStopped(p *scopePage, stopped []secret.ID) {
	for i := range p.secrets {
		if slices.Contains(stopped, p.secrets[i].ID) {
			p.secrets[i].Stopped = true
		}
	}
}

// stopRotationsOf terminates the rotations in flight of ids and returns their secrets.
func (r *incidentRun) stopRotationsOf(ctx, actx workflow.Context, ids []secret.ID) ([]secret.ID, error) {
	var stopped []secret.ID
	stop := activities.StopRotationsInput{IDs: ids, Reason: "superseded by incident " + r.in.IncidentID}
	err := workflow.ExecuteActivity(actx, incidentActs.StopRotations, stop).Get(ctx, &stopped)
	return stopped, err
}

// pauseSchedulesOf starts pausing the schedules of ids (as pauseSchedules does for the
// whole scope); the returned future's Get adds what was paused to the incident's record.
func (r *incidentRun) pauseSchedulesOf(ctx workflow.Context, ids []secret.ID) workflow.Future {
	note := r.pauseNote()
	sctx := workflow.WithActivityOptions(ctx, scheduleStepOptions)
	f := workflow.ExecuteActivity(sctx, incidentActs.PauseSchedules, activities.SchedulesInput{IDs: ids, Note: note})
	done, settle := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var paused activities.PausedSchedules
		err := f.Get(ctx, &paused)
		if err == nil {
			sch := &r.carry.Schedules
			sch.Note = note
			sch.Paused = append(sch.Paused, paused.Paused...)
			sch.KeptPaused = append(sch.KeptPaused, paused.KeptPaused...)
			r.report.Schedules = sch.listed()
		}
		settle.Set(nil, err)
	})
	return done
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

// workPage rotates page k in an IncidentPage child and counts its secrets. A page that
// could not run reports each of its secrets failed, with the reason.
func (r *incidentRun) workPage(ctx workflow.Context, k int, p *scopePage) {
	if len(p.secrets) == 0 {
		return
	}
	first := len(r.carry.Done)
	in := IncidentPageInput{Incident: r.in, Page: k, StartedAt: r.carry.StartedAt, Secrets: p.secrets}
	in.Incident.Planned = nil
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: incidentPageID(r.in.IncidentID, k),
		TaskQueue:  TaskQueue,
		// Cancelling the incident cancels the page through its context; terminating the
		// incident leaves the page to finish, as it leaves the rotations it started, so a
		// rotation is never cut off between its containment and its new credential.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("Incident %s: secrets %d to %d of %d (%s to %s)", r.in.IncidentID,
			first+1, first+len(p.secrets), r.report.Total, p.secrets[0].ID, p.secrets[len(p.secrets)-1].ID),
	})
	var reports []SecretReport
	err := workflow.ExecuteChildWorkflow(cctx, IncidentPageWorkflowName, in).Get(ctx, &reports)
	if err == nil && len(reports) != len(p.secrets) {
		err = fmt.Errorf("the page reported %d secrets of %d", len(reports), len(p.secrets))
	}
	cancelled := ctx.Err() != nil
	if err != nil {
		reports = make([]SecretReport, len(p.secrets))
		for i, s := range p.secrets {
			reports[i] = SecretReport{ID: s.ID, Outcome: OutcomeFailed, Superseded: s.Stopped,
				ContainedMs: s.ContainedMs, Batch: s.ContainedMs > 0, Ended: s.Ended,
				Error: "rotate its page of the scope (each rotation's own workflow, rotate/<secret-id>, says how it ended): " + activities.ErrorMessage(err)}
			if cancelled {
				reports[i].Outcome = OutcomeAborted
			}
		}
	}
	for i, rep := range reports {
		batch := p.secrets[i].ContainedMs > 0
		r.report.add(rep, batch)
		if !batch && !cancelled {
			r.settle(ctx, 1)
		}
	}
	r.carry.Done = append(r.carry.Done, reports...)
}

// maxListedSecrets bounds the secrets an incident's report lists one by one, since the
// report travels as one payload: a scope up to that size is listed whole; a larger one
// lists the secrets that need a human (as many of them), and Unlisted counts the others,
// which were rotated as planned (each one's records are in the audit trail).
const maxListedSecrets = secretsPerRun

// listSecrets sets the report's Secrets from what the incident did.
func (r *incidentRun) listSecrets() {
	r.report.Secrets, r.report.Unlisted = listed(r.carry.Done)
}

// listed is every report if they are few; otherwise those that need a human, at most
// maxListedSecrets, and how many were left out.
func listed(done []SecretReport) ([]SecretReport, int) {
	if len(done) <= maxListedSecrets {
		return done, 0
	}
	var out []SecretReport
	for _, s := range done {
		if s.needsHuman() && len(out) < maxListedSecrets {
			out = append(out, s)
		}
	}
	return out, len(done) - len(out)
}
