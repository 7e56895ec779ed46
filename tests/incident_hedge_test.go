package tests

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/workflows"
)

// TestIncidentHedgesAStuckContainBatch: on the real server with two `keyturn worker`
// processes, the one running a containment batch is SIGKILLed while the batch is held up
// on its target (a row lock on the role in use). The batch gets a second copy on the
// live worker. Whichever copy finishes first counts; the other is cancelled, and the
// incident waits until the server has ended it before it starts any rotation. The secret
// is contained and rotated once, its old password is refused and the new one logs in,
// and the history replays (recorded with KEYTURN_RECORD_HISTORIES=1). How soon the copy
// starts is the benchmark's to measure (make bench-incident-kill), not this test's.
func TestIncidentHedgesAStuckContainBatch(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s"}}, NoWorker: true})
	ctx := context.Background()
	workers := []*exec.Cmd{workerProcess(t, env), workerProcess(t, env)}
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	old, oldMaterial := current(t, env, "e2e/app")
	role := old.Metadata["role"]

	release := holdRole(t, env, role)

	in := workflows.IncidentInput{IncidentID: "hedge-1", Selector: activities.Selector{Prefix: "e2e/"}, Mode: workflows.ModeContain,
		Reason: "hedge drill", Operator: "test"}
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(in.IncidentID), TaskQueue: workflows.TaskQueue},
		workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	var killed *exec.Cmd
	waitFor(t, 30*time.Second, "the containment batch to start on a worker", func() bool {
		desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), "")
		if err != nil {
			return false
		}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() != "ContainBatch" || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
				continue
			}
			for _, w := range workers {
				if testenv.RanOn(pa.GetLastWorkerIdentity(), w.Process.Pid) {
					killed = w
				}
			}
		}
		return killed != nil
	})
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = killed.Process.Wait()
	waitFor(t, 30*time.Second, "a second copy of the stuck containment batch", func() bool {
		return len(containBatches(t, env, run.GetID(), run.GetRunID()).scheduled) == 2
	})
	release()
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var rep workflows.IncidentReport
	if err := run.Get(waitCtx, &rep); err != nil {
		t.Fatalf("incident: %v", err)
	}
	if rep.Contained != 1 || rep.Rotated != 1 || rep.Failed != 0 {
		t.Fatalf("report: %d contained, %d rotated, %d failed; want the secret contained and rotated once", rep.Contained, rep.Rotated, rep.Failed)
	}

	// Which copy wins depends on where the incident's own workflow was cached: on the
	// killed worker its next task waits out the sticky timeout, and the dead copy's retry
	// on the live worker may finish first. Either way both copies have ended before the
	// first rotation page starts.
	b := containBatches(t, env, run.GetID(), run.GetRunID())
	if len(b.scheduled) != 2 || len(b.cancelRequested) > 1 {
		t.Fatalf("ContainBatch copies %v, cancelled %v: want the stuck batch hedged once and at most the slower copy cancelled", b.scheduled, b.cancelRequested)
	}
	for _, c := range b.scheduled {
		if b.ended[c] == 0 || b.firstChild == 0 || b.ended[c] > b.firstChild {
			t.Fatalf("the copy scheduled at event %d ended at event %d, the first rotation page started at event %d: every copy must have ended first",
				c, b.ended[c], b.firstChild)
		}
	}
	t.Logf("copies scheduled at events %v, cancelled %v, ended %v; first rotation page at %d", b.scheduled, b.cancelRequested, b.ended, b.firstChild)
	if err := login(ctx, env, role, oldMaterial.Get("password")); err == nil {
		t.Error("the old password still logs in after the incident")
	}
	v, m := current(t, env, "e2e/app")
	if v.Number == old.Number {
		t.Fatal("the incident issued no new version")
	}
	if err := login(ctx, env, v.Metadata["role"], m.Get("password")); err != nil {
		t.Errorf("the new credential does not log in: %v", err)
	}
	checkReplay(t, env, run.GetID(), run.GetRunID(), "incident_contain_hedged")
}

// batchEvents are the ContainBatch activities of an incident's history, by the event ID
// that scheduled each: which were cancelled, the event that ended each, and the event
// that started the first rotation page.
type batchEvents struct {
	scheduled       []int64
	cancelRequested []int64
	ended           map[int64]int64
	firstChild      int64
}

func containBatches(t *testing.T, env *testenv.Env, workflowID, runID string) batchEvents {
	t.Helper()
	b := batchEvents{ended: map[int64]int64{}}
	isBatch := map[int64]bool{}
	for _, e := range history(t, env, workflowID, runID).GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "ContainBatch" {
				b.scheduled = append(b.scheduled, e.GetEventId())
				isBatch[e.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
			if id := e.GetActivityTaskCancelRequestedEventAttributes().GetScheduledEventId(); isBatch[id] {
				b.cancelRequested = append(b.cancelRequested, id)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			b.ended[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] = e.GetEventId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			b.ended[e.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()] = e.GetEventId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			b.ended[e.GetActivityTaskFailedEventAttributes().GetScheduledEventId()] = e.GetEventId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			b.ended[e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()] = e.GetEventId()
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			if b.firstChild == 0 {
				b.firstChild = e.GetEventId()
			}
		}
	}
	return b
}
