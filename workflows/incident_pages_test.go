package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// pagedScope is n postgres secrets p/00 and up.
func pagedScope(n int) []activities.SecretInfo {
	out := make([]activities.SecretInfo, n)
	for i := range out {
		out[i] = activities.SecretInfo{ID: secret.ID(fmt.Sprintf("p/%02d", i)), Kind: "postgres"}
	}
	return out
}

// TestIncidentPagesContainAllBeforeRotatingAny: a scope of 5 in pages of 2 is read in
// three pages, every page is contained (stop, batch) and then paused before the first
// rotation starts, each page is rotated by its own IncidentPage child, and the report
// counts and lists every secret once. One secret the batch could not contain is
// contained by its rotation; a secret whose rotation a schedule started meanwhile (found
// by the second stop, which also asks for rotations that ended since the incident
// began) is contained again by a batch of its own before any rotation.
func TestIncidentPagesContainAllBeforeRotatingAny(t *testing.T) {
	defer workflows.SetPageSize(2)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env.SetStartTime(start)
	onScope(env, ia, pagedScope(5)...)
	// The pages' pauses (and second stops, and batches) may run at once, in any order.
	var mu sync.Mutex
	var paused [][]secret.ID
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SchedulesInput) (activities.PausedSchedules, error) {
			mu.Lock()
			defer mu.Unlock()
			paused = append(paused, in.IDs)
			return activities.PausedSchedules{Paused: []string{"keyturn/" + string(in.IDs[0])}}, nil
		})
	stops := 0
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StopRotationsInput) ([]secret.ID, error) {
			mu.Lock()
			defer mu.Unlock()
			stops++
			if stops <= 3 && !in.EndedSince.IsZero() {
				t.Errorf("the first stop asked for rotations that ended since %s", in.EndedSince)
			}
			if stops > 3 && !in.EndedSince.Equal(start) {
				t.Errorf("the second stop asked for rotations that ended since %s, want the incident's start", in.EndedSince)
			}
			if stops > 3 && slices.Contains(in.IDs, "p/03") { // the second round: a schedule started one
				return []secret.ID{"p/03"}, nil
			}
			return nil, nil
		})
	contained := 0
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ContainBatchInput) ([]activities.ContainedSecret, error) {
			mu.Lock()
			defer mu.Unlock()
			var out []activities.ContainedSecret
			for _, id := range in.SecretIDs {
				if id == "p/01" {
					out = append(out, activities.ContainedSecret{ID: id, Error: "connection refused"})
					continue
				}
				contained++
				out = append(out, activities.ContainedSecret{ID: id, At: start.Add(time.Second)})
			}
			return out, nil
		})
	var rotated []secret.ID
	var alreadyContained []secret.ID
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			mu.Lock()
			if contained != 5 {
				t.Errorf("%s rotated after %d of 5 batch containments (p/03 twice)", in.SecretID, contained)
			}
			mu.Unlock()
			rotated = append(rotated, in.SecretID)
			if in.AlreadyContained {
				alreadyContained = append(alreadyContained, in.SecretID)
			}
			res := workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: start.Add(3 * time.Second)}
			if !in.AlreadyContained {
				res.ContainedAt = start.Add(2 * time.Second)
			}
			return res, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-p", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
		Planned: []secret.ID{"p/00", "p/01", "p/02", "p/03", "p/04", "p/99"},
	})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the incident did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep workflows.IncidentReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(paused, func(a, b []secret.ID) int { return strings.Compare(string(a[0]), string(b[0])) })
	if len(paused) != 3 || len(paused[0]) != 2 || len(paused[2]) != 1 || stops != 6 {
		t.Fatalf("paused %v, stop rounds %d: want 3 pages (2, 2, 1) stopped twice each", paused, stops)
	}
	if len(rotated) != 5 {
		t.Fatalf("rotated %v", rotated)
	}
	slices.Sort(alreadyContained)
	if !slices.Equal(alreadyContained, []secret.ID{"p/00", "p/02", "p/03", "p/04"}) {
		t.Fatalf("rotations told the batch contained them: %v (p/01 failed in the batch, p/03 was contained again)", alreadyContained)
	}
	if rep.Total != 5 || rep.Done != 5 || rep.Contained != 5 || rep.Rotated != 5 || rep.Failed != 0 || rep.Unlisted != 0 || len(rep.Secrets) != 5 {
		t.Fatalf("report %+v", rep.IncidentProgress)
	}
	if rep.AllContainedMs != 2000 || rep.AllRotatedMs != 3000 {
		t.Fatalf("contained after %d ms, rotated after %d ms", rep.AllContainedMs, rep.AllRotatedMs)
	}
	for i, s := range rep.Secrets {
		if s.ID != pagedScope(5)[i].ID || s.Outcome != workflows.OutcomeRotated {
			t.Fatalf("secret %d of the report: %+v", i, s)
		}
	}
	if !rep.Secrets[3].Superseded || !rep.Secrets[3].Batch || !rep.Secrets[0].Batch { // p/03: stopped, then contained by its second batch
		t.Fatalf("p/03 %+v, p/00 %+v", rep.Secrets[3], rep.Secrets[0])
	}
	if len(rep.Schedules.Paused) != 3 || len(rep.ScopeDiff.Unmatched) != 1 || rep.ScopeDiff.Unmatched[0] != "p/99" {
		t.Fatalf("schedules %+v, scope diff %+v", rep.Schedules, rep.ScopeDiff)
	}
}

// TestIncidentPagesRefuseAScopeTooLarge: a scope above MaxIncidentScope is refused before
// anything is stopped, paused or contained.
func TestIncidentPagesRefuseAScopeTooLarge(t *testing.T) {
	env, ia := incidentEnv(t)
	env.OnActivity(ia.ScopePage, mock.Anything, mock.Anything).Return(
		activities.ScopePage{Secrets: []activities.ScopedSecret{{ID: "p/0", Kind: "postgres"}}, Total: workflows.MaxIncidentScope + 1, More: true}, nil)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-big", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "split it") {
		t.Fatalf("error %v, want the scope refused with the advice to split it", err)
	}
	// No other activity was mocked: any stop, pause or containment would have failed
	// the workflow with a different error.
}

// TestListedSecretsOfALargeIncident: a report lists every secret of a scope up to a page,
// and of a larger one only those that need a human, counting the others.
func TestListedSecretsOfALargeIncident(t *testing.T) {
	var done []workflows.SecretReport
	for i := range 1500 {
		s := workflows.SecretReport{ID: secret.ID(fmt.Sprintf("p/%04d", i)), Outcome: workflows.OutcomeRotated, RotatedMs: 10}
		if i%500 == 7 {
			s.Outcome, s.Error = workflows.OutcomeFailed, "test failed"
		}
		done = append(done, s)
	}
	listed, unlisted := workflows.Listed(done[:1000])
	if len(listed) != 1000 || unlisted != 0 {
		t.Fatalf("1000 secrets: listed %d, unlisted %d", len(listed), unlisted)
	}
	listed, unlisted = workflows.Listed(done)
	if len(listed) != 3 || unlisted != 1497 || listed[1].ID != "p/0507" {
		t.Fatalf("1500 secrets: listed %v, unlisted %d", listed, unlisted)
	}
}

// TestIncidentPagesInRotateMode: in rotate mode the whole scope is read, then every page's
// schedules are paused, then every page's rotations in flight stopped, before any secret
// is rotated; a stopped rotation is cleaned
// up (Supersede) before its secret's rotation, and nothing is contained in a batch.
func TestIncidentPagesInRotateMode(t *testing.T) {
	defer workflows.SetPageSize(2)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	onScope(env, ia, pagedScope(3)...)
	var order []string
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SchedulesInput) (activities.PausedSchedules, error) {
			order = append(order, fmt.Sprintf("pause %d", len(in.IDs)))
			return activities.PausedSchedules{}, nil
		})
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StopRotationsInput) ([]secret.ID, error) {
			order = append(order, fmt.Sprintf("stop %d", len(in.IDs)))
			if slices.Contains(in.IDs, "p/02") {
				return []secret.ID{"p/02"}, nil
			}
			return nil, nil
		})
	env.OnActivity(a.Supersede, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ContainInput) error {
			order = append(order, "supersede "+string(in.SecretID))
			return nil
		})
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			order = append(order, "rotate")
			if in.Contain || in.AlreadyContained {
				t.Errorf("rotate mode rotated %s with contain %v, already contained %v", in.SecretID, in.Contain, in.AlreadyContained)
			}
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: time.Now()}, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	rep := runIncident(t, env, workflows.IncidentInput{
		IncidentID: "i-r", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeRotate, Reason: "hygiene", Operator: "oncall",
	})
	want := []string{"pause 2", "pause 1", "stop 2", "stop 1", "rotate", "rotate", "supersede p/02", "rotate"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if rep.Total != 3 || rep.Rotated != 3 || rep.Contained != 0 || !rep.Secrets[2].Superseded {
		t.Fatalf("report %+v, secrets %+v", rep.IncidentProgress, rep.Secrets)
	}
}

// TestIncidentProgressMovesWithinAPage: while a page is being rotated, the incident's
// progress query counts what the page has finished so far (it tells every 50 secrets),
// not only finished pages.
func TestIncidentProgressMovesWithinAPage(t *testing.T) {
	defer workflows.SetPageSize(100)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	onScope(env, ia, pagedScope(100)...)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	seen := -1
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			_ = workflow.Sleep(ctx, time.Second)
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: workflow.Now(ctx)}, nil
		})
	// Each rotation takes a second, one at a time (parallelism 1): queried about 70
	// seconds in, the page has finished some 70 secrets and told the incident of 50.
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryProgress)
		if err != nil {
			t.Error(err)
			return
		}
		var p workflows.IncidentProgress
		if err := v.Get(&p); err != nil {
			t.Error(err)
		}
		seen = p.Done
	}, 70*time.Second)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-q", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeRotate, Reason: "hygiene", Operator: "oncall", Parallelism: 1,
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if seen != 50 {
		t.Fatalf("the progress query said %d secrets done 70 s into a page of 100 (one a second), want the 50 the page last told", seen)
	}
}

// TestIncidentSchedulesListsAreCut: an incident that paused more schedules than a report
// lists resumes every one of them, in chunks, and its report cuts each list, giving the
// full length beside it.
func TestIncidentSchedulesListsAreCut(t *testing.T) {
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	onScope(env, ia, pagedScope(3)...)
	var all []string
	for i := range 2500 {
		all = append(all, fmt.Sprintf("keyturn/p/%04d", i))
	}
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{Paused: all}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	var chunks []int
	env.OnActivity(ia.ResumeSchedules, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ResumeSchedulesInput) (activities.ResumedSchedules, error) {
			chunks = append(chunks, len(in.ScheduleIDs))
			return activities.ResumedSchedules{Resumed: in.ScheduleIDs}, nil
		})
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: time.Now()}, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	rep := runIncident(t, env, workflows.IncidentInput{
		IncidentID: "i-s", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeRotate, Reason: "hygiene", Operator: "oncall", ResumeSchedules: true,
	})
	if !slices.Equal(chunks, []int{2000, 500}) {
		t.Fatalf("resumed in chunks of %v, want 2000 and 500", chunks)
	}
	s := rep.Schedules
	if len(s.Paused) != 2000 || s.PausedCount != 2500 || len(s.Resumed) != 2000 || s.ResumedCount != 2500 || !s.Cut() {
		t.Fatalf("report lists %d paused (count %d), %d resumed (count %d)", len(s.Paused), s.PausedCount, len(s.Resumed), s.ResumedCount)
	}
}

// TestIncidentPagesAbortRecordsWhatItPaused: an incident in contain mode whose second
// page cannot be read still pauses the schedules of the first page, which it contained,
// and waits for that pause, so its report names the schedules paused (and the command to
// resume them) and what was contained.
func TestIncidentPagesAbortRecordsWhatItPaused(t *testing.T) {
	defer workflows.SetPageSize(2)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	env.OnActivity(ia.ScopePage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScopePageInput) (activities.ScopePage, error) {
			if in.After != "" {
				return activities.ScopePage{}, temporal.NewNonRetryableApplicationError("inventory unreadable", "Test", nil)
			}
			return activities.ScopePage{Secrets: []activities.ScopedSecret{{ID: "p/00", Kind: "postgres"}, {ID: "p/01", Kind: "postgres"}}, Total: 3, More: true}, nil
		})
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).After(time.Minute).Return(activities.PausedSchedules{Paused: []string{"keyturn/p/00"}}, nil)
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		[]activities.ContainedSecret{{ID: "p/00", At: time.Now()}, {ID: "p/01", At: time.Now()}}, nil)
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-a", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !strings.Contains(err.Error(), "read the scope after p/01; 2 secrets of the pages read before were contained") {
		t.Fatalf("error %v", err)
	}
	var rep workflows.IncidentReport
	if err := appErr.Details(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Schedules.Paused) != 1 || rep.Schedules.ResumeCommand == "" || rep.Contained != 2 {
		t.Fatalf("report: schedules %+v, contained %d", rep.Schedules, rep.Contained)
	}
}

// TestIncidentPagesAbortOnAFailedPause: a pause that fails part way may have paused
// some schedules it cannot list; the report keeps the note, says the pause failed and
// gives the command that looks for them.
func TestIncidentPagesAbortOnAFailedPause(t *testing.T) {
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	env.OnActivity(ia.ScopePage, mock.Anything, mock.Anything).Return(
		activities.ScopePage{Secrets: []activities.ScopedSecret{{ID: "p/00", Kind: "postgres"}}, Total: 1}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(
		activities.PausedSchedules{}, temporal.NewNonRetryableApplicationError("pause schedule keyturn/p/00: unavailable", "Test", nil))
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return([]activities.ContainedSecret{{ID: "p/00", At: time.Now()}}, nil)
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-p", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) {
		t.Fatalf("error %v", err)
	}
	var rep workflows.IncidentReport
	if err := appErr.Details(&rep); err != nil {
		t.Fatal(err)
	}
	s := rep.Schedules
	if !s.PauseFailed || s.Note != "incident i-p (oncall): leak" || s.ResumeCommand != workflows.ResumeCommand("i-p") || len(s.Paused) != 0 {
		t.Fatalf("report schedules: %+v", s)
	}
}

// TestIncidentPagesEndAtAnEmptyPage: a page that comes back empty (the inventory shrank
// while the scope was read) ends the scope; the incident rotates what it read.
func TestIncidentPagesEndAtAnEmptyPage(t *testing.T) {
	defer workflows.SetPageSize(1)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	env.OnActivity(ia.ScopePage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScopePageInput) (activities.ScopePage, error) {
			if in.After != "" {
				return activities.ScopePage{Total: 1}, nil
			}
			return activities.ScopePage{Secrets: []activities.ScopedSecret{{ID: "p/00", Kind: "postgres"}}, Total: 2, More: true}, nil
		})
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: time.Now()}, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	rep := runIncident(t, env, workflows.IncidentInput{
		IncidentID: "i-e", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeRotate, Reason: "drill", Operator: "oncall",
	})
	if rep.Total != 1 || rep.Rotated != 1 {
		t.Fatalf("report %+v", rep.IncidentProgress)
	}
}

// TestIncidentPagesCancelled: an incident cancelled while a page is rotated ends
// cancelled with its report; the secrets its page never started are reported aborted,
// later pages are neither started nor counted, and incident_contained is not sent for
// an incident whose scope was never contained.
func TestIncidentPagesCancelled(t *testing.T) {
	defer workflows.SetPageSize(2)()
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	onScope(env, ia, pagedScope(5)...)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ContainBatchInput) ([]activities.ContainedSecret, error) {
			out := make([]activities.ContainedSecret, len(in.SecretIDs))
			for i, id := range in.SecretIDs {
				out[i] = activities.ContainedSecret{ID: id, Error: "connection refused"}
			}
			return out, nil
		})
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			_ = workflow.Sleep(ctx, 10*time.Second)
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, ContainedAt: workflow.Now(ctx), PromotedAt: workflow.Now(ctx)}, nil
		})
	var sent []string
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyIncidentInput) (activities.NotifyResult, error) {
			sent = append(sent, in.Type)
			return activities.NotifyResult{}, nil
		})
	env.RegisterDelayedCallback(env.CancelWorkflow, 15*time.Second)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-c", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall", Parallelism: 1,
	})
	err := env.GetWorkflowError()
	rep, ok := activities.DetailsOf[workflows.IncidentReport](err)
	if !temporal.IsCanceledError(err) || !ok {
		t.Fatalf("error %v (report %v), want cancelled with the report", err, ok)
	}
	if slices.Contains(sent, "incident_contained") {
		t.Fatalf("sent %v: incident_contained for a scope never contained", sent)
	}
	if rep.Total != 5 || rep.Done != 2 {
		t.Fatalf("report %+v, secrets %+v: want the first page's 2 secrets counted, the others not", rep.IncidentProgress, rep.Secrets)
	}
	for _, s := range rep.Secrets {
		if s.ID == "" {
			t.Fatalf("a secret without an ID in the report: %+v", rep.Secrets)
		}
	}
}
