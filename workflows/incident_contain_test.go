package workflows_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/workflows"
)

// TestIncidentHedgesAStuckContainBatch: a containment batch that does not finish (its
// worker died, say) gets a second copy after a second; the copy's containment is what
// the report says, and the stuck copy is cancelled before any secret is rotated. (The
// test environment resolves a cancelled activity at once; that the incident also waits
// for the server to end the stuck copy is shown on the real server by
// tests.TestIncidentHedgesAStuckContainBatch.) A batch that finishes is never copied: the
// other incident tests count one ContainBatch per batch.
func TestIncidentHedgesAStuckContainBatch(t *testing.T) {
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env.SetStartTime(start)
	onScope(env, ia, pagedScope(3)...)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	var calls atomic.Int32
	stuckCancelled := false
	release := make(chan struct{})
	defer close(release)
	env.SetOnActivityCanceledListener(func(info *activity.Info) {
		if info.ActivityType.Name == "ContainBatch" {
			stuckCancelled = true
		}
	})
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ContainBatchInput) ([]activities.ContainedSecret, error) {
			if calls.Add(1) == 1 {
				<-release // stuck until the test ends
				return nil, errors.New("released")
			}
			var out []activities.ContainedSecret
			for _, id := range in.SecretIDs {
				out = append(out, activities.ContainedSecret{ID: id, At: start.Add(time.Second)})
			}
			return out, nil
		})
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			if !stuckCancelled {
				t.Errorf("%s rotated before the stuck copy of its batch was cancelled", in.SecretID)
			}
			if !in.AlreadyContained {
				t.Errorf("%s: the rotation was not told the hedge contained it", in.SecretID)
			}
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: start.Add(3 * time.Second)}, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	rep := runIncident(t, env, workflows.IncidentInput{
		IncidentID: "i-h", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	if calls.Load() != 2 || !stuckCancelled {
		t.Fatalf("%d ContainBatch calls, stuck copy cancelled %v: want the stuck batch copied once and cancelled", calls.Load(), stuckCancelled)
	}
	if rep.Contained != 3 || rep.Rotated != 3 || rep.AllContainedMs != 1000 {
		t.Fatalf("report: %d contained after %d ms, %d rotated", rep.Contained, rep.AllContainedMs, rep.Rotated)
	}
}

// TestIncidentHedgesWithinABudget: on targets where every batch is slow (2 s here), the
// first wave of four batches is hedged after a second, but only two at a time: four
// batches cost six ContainBatch calls, not eight.
func TestIncidentHedgesWithinABudget(t *testing.T) {
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	onScope(env, ia, pagedScope(400)...)
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	var calls atomic.Int32
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ContainBatchInput) ([]activities.ContainedSecret, error) {
			calls.Add(1)
			time.Sleep(2 * time.Second)
			out := make([]activities.ContainedSecret, len(in.SecretIDs))
			for i, id := range in.SecretIDs {
				out[i] = activities.ContainedSecret{ID: id, At: time.Now()}
			}
			return out, nil
		})
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated}, nil
		})
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-b", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 6 {
		t.Fatalf("%d ContainBatch calls for 4 slow batches; want 6 (2 hedges at a time)", got)
	}
}

// TestHedgeDelay: a batch is hedged after a second while no batch has finished, then at
// 1.5 times the 90th percentile of the batches finished (the median for runs from
// before hedgeTuned; at least 250 ms), and not at all once that comes later
// than the heartbeat timeout that retries a dead worker's copy anyway.
func TestHedgeDelay(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		took  []time.Duration
		tuned bool
		want  time.Duration
		hedge bool
	}{
		{nil, false, time.Second, true},
		{nil, true, time.Second, true},
		{ms(100), true, 250 * time.Millisecond, true},
		{ms(300, 310, 5000), false, 465 * time.Millisecond, true},
		{ms(300, 310, 5000), true, 465 * time.Millisecond, true},
		{ms(300, 600), false, 900 * time.Millisecond, true},
		{ms(300, 600), true, 900 * time.Millisecond, true},
		{ms(1200), true, 1800 * time.Millisecond, true},
		{ms(1400), true, 2100 * time.Millisecond, false},
		// Ten batches on loaded cores: the median hedged a batch that ran 450 ms, the
		// 90th percentile waits for 900 ms; the one slow batch does not count.
		{ms(200, 250, 280, 300, 300, 320, 350, 500, 600, 5000), false, 480 * time.Millisecond, true},
		{ms(200, 250, 280, 300, 300, 320, 350, 500, 600, 5000), true, 900 * time.Millisecond, true},
	} {
		got, hedge := workflows.HedgeDelay(c.took, c.tuned)
		if hedge != c.hedge || (hedge && got != c.want) {
			t.Errorf("took %v (tuned %v): hedge after %v (%v), want %v (%v)", c.took, c.tuned, got, hedge, c.want, c.hedge)
		}
	}
}
