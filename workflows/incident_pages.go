package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

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

// changePauseAfterContain: in contain mode the scope's schedules are paused once the
// whole scope is contained, not beside it. Pausing describes each of a secret's possible
// schedules (two calls to the server per secret, whether they exist or not): at 10,000
// secrets that is 20,000 calls, which took a third of the machine's CPU while the
// credentials were being revoked. A schedule that starts a rotation before its pause is
// caught after the pauses: running rotations are stopped again, ended ones are found
// too, and those secrets are contained again at once. Incidents that began before this
// change pause beside the containment, and leave such secrets to their own rotations,
// so their histories replay.
const changePauseAfterContain = "pause-after-contain"

// pageSize is how many secrets one page holds: one ScopePage result, one IncidentPage
// child's input and result, and that child's children (far below Temporal's 2,000
// pending children per workflow). A variable so tests can page small scopes.
var pageSize = secretsPerRun

// MaxIncidentScope bounds an incident's scope. The incident's own history keeps a few
// hundred bytes per secret (its scope pages, containment batches and page results) and
// Temporal refuses a history above 50 MiB; a larger scope is refused before anything
// changes, with the advice to split it.
const MaxIncidentScope = 100_000

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
// Phase one reads every page and, in contain mode, stops its rotations and contains it,
// page by page, then pauses every page's schedules and stops the rotations started
// meanwhile (changePauseAfterContain; before it, each page's pause ran beside its
// containment); in rotate mode it reads the whole scope, then pauses every page's
// schedules, then stops every page's rotations.
// Phase two rotates the pages one after the other, each in an IncidentPage child.
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
		// pauseAfter: the schedules are paused once the scope is contained.
		pauseAfter bool
		// sent counts the pages whose secrets went to the batches.
		sent int
	)
	batches := newBatchPipeline(ctx, r)
	// fail ends phase one early: the batches started are waited for, and the schedules
	// of the pages sent to them are paused (or their pauses already started waited for),
	// so the report says what was contained and paused.
	fail := func(what string, err error) ([]scopePage, string, error) {
		batches.drain()
		if pauseAfter {
			pausing = r.pauseEach(ctx, pages[:sent])
		}
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
			if len(pages) == 1 {
				pauseAfter = workflow.GetVersion(ctx, changePauseAfterContain, workflow.DefaultVersion, 1) == 1
			}
			// Stop, then contain (and, before changePauseAfterContain, pause beside it).
			stopped, err := r.stopRotationsOf(ctx, actx, pg.ids())
			if err != nil {
				return fail("stop rotations in flight", err)
			}
			markStopped(pg, stopped)
			if !pauseAfter {
				pausing = append(pausing, r.pauseSchedulesOf(ctx, pg.ids()))
			}
			batches.add(pg)
			sent++
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
	if pauseAfter {
		r.report.Phase = PhasePause
		pausing = r.pauseEach(ctx, pages)
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
	// A schedule (or an operator) may have started a rotation between a page's stop and
	// its pause. A running one is stopped. Since changePauseAfterContain one that ended
	// after the incident began is found too (the first stop's visibility query may also
	// have missed one that had just begun), since its rollback may have re-applied a
	// credential the containment revoked; those secrets are contained again at once.
	// Before that change their own rotations contained them again.
	var endedSince time.Time
	if pauseAfter {
		endedSince = r.report.StartedAt
	}
	var again scopePage
	var from []*PageSecret // where each secret of again is in its page
	for k := range pages {
		ran, err := r.stopRotationsSince(ctx, actx, pages[k].ids(), endedSince)
		if err != nil {
			return nil, "stop rotations started while the schedules were being paused; " + r.containedSoFar(), err
		}
		if len(ran) == 0 {
			continue
		}
		markStopped(&pages[k], ran)
		for i := range pages[k].secrets {
			ps := &pages[k].secrets[i]
			if !slices.Contains(ran, ps.ID) || ps.ContainedMs == 0 {
				continue
			}
			ps.ContainedMs = 0
			r.report.Contained--
			if pauseAfter {
				again.secrets = append(again.secrets, PageSecret{ID: ps.ID, Kind: ps.Kind})
				from = append(from, ps)
			}
		}
	}
	if len(again.secrets) > 0 {
		batches.add(&again)
		batches.drain()
		for i, s := range again.secrets {
			from[i].ContainedMs = s.ContainedMs // 0 when it failed: its own rotation contains it
			for _, line := range s.Ended {
				if !slices.Contains(from[i].Ended, line) {
					from[i].Ended = append(from[i].Ended, line)
				}
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

// pauseEach starts pausing the schedules of every page, each page in an activity of its
// own.
func (r *incidentRun) pauseEach(ctx workflow.Context, pages []scopePage) []workflow.Future {
	pausing := make([]workflow.Future, len(pages))
	for k := range pages {
		pausing[k] = r.pauseSchedulesOf(ctx, pages[k].ids())
	}
	return pausing
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
