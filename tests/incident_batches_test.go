package tests

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// TestContainmentTakesEveryBatchATaskBrings: when the incident's workflow is on no worker
// while its containment batches finish, the next workflow task brings them all at once.
// Each must count as finished before anything is hedged (hedged-contain version 2): the
// task comes after the first hedge was due, so a workflow that looked at one finished
// batch at a time would find the others overdue and run them again (version 1 did: two
// second copies, scheduled and cancelled in that task). The second drill runs the path
// where both copies of a hedged batch are found finished together (another batch's
// completion wakes the workflow first): the batch counts once, and nothing is cancelled.
// That drill checks the outcome, which version 1 reached too by another path; what
// version 2 changes there (the faster copy's time is the one that counts for later
// hedges) is not visible in a scope of two batches.
//
// The real server, the real activities and store, fake targets whose revokes the test
// holds; one worker runs only activities, and the workflow worker is stopped while the
// batches finish and a fresh one started after. The incidents rotate one secret at a
// time and are terminated once contained, so few rotations are left to the next worker.
func TestContainmentTakesEveryBatchATaskBrings(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server and SDK warnings:\n%s", logs.String())
		}
	})
	srv := testenv.Temporal(t, logger)
	c := testenv.Client(t, srv, logger, nil)
	env := &testenv.Env{Client: c}
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	inv := newHeldInventory(store, map[string]int{"all1/": 300, "all2/": 300, "all3/": 300, "pair/a": 100, "pair/b": 100})
	if err := testenv.SeedVersions(ctx, inv, inv.ids, 8); err != nil {
		t.Fatalf("seed current versions: %v", err)
	}
	// The activities alone, as worker.New registers them.
	acts := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{DisableWorkflowWorker: true})
	acts.RegisterActivityWithOptions(activities.NewActivities(inv), activity.RegisterOptions{})
	acts.RegisterActivityWithOptions(activities.NewIncidentActivities(c, inv, nil, nil), activity.RegisterOptions{})
	if err := acts.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acts.Stop)

	t.Run("three batches in one task", func(t *testing.T) {
		// The workflow worker must stop before the first hedge is due (1 s after the batches
		// were scheduled); on a machine too busy for that, the drill is run again.
		for attempt := 1; ; attempt++ {
			if attempt > 3 {
				t.Fatal("three times the workflow worker could not be stopped within a second of the batches' start; the machine is too busy for this drill")
			}
			prefix := fmt.Sprintf("all%d/", attempt) // secrets never contained before
			inv.hold(prefix)
			run, flows := startHeldIncident(t, env, inv, fmt.Sprintf("batches-all-%d", attempt), prefix)
			waitFor(t, 30*time.Second, "three containment batches held on their targets", func() bool {
				return inv.waiting(prefix) == 3
			})
			flows.Stop()
			if n := len(containBatches(t, env, run.GetID(), run.GetRunID()).scheduled); n != 3 {
				t.Logf("attempt %d: %d ContainBatch scheduled before the workflow worker stopped; running the drill again", attempt, n)
				inv.release(prefix)
				finishHeldIncident(t, env, inv, run)
				continue
			}
			// Past containHedgeFirst (1 s) since the batches started: every batch is overdue
			// by the time the next task runs.
			time.Sleep(1500 * time.Millisecond)
			releaseIntoOneTask(t, env, inv, run, prefix, 3, 300)
			return
		}
	})

	t.Run("both copies of hedged batches in one task", func(t *testing.T) {
		// Two batches (pair/a..., then pair/b...), held past the first hedge's due time:
		// each gets a second copy. Then b's copies finish, then a's, all before the next task.
		inv.hold("pair/a")
		inv.hold("pair/b")
		run, flows := startHeldIncident(t, env, inv, "batches-pair", "pair/")
		waitFor(t, 30*time.Second, "both batches and their second copies held on their targets", func() bool {
			return inv.waiting("pair/a") == 2 && inv.waiting("pair/b") == 2
		})
		flows.Stop()
		inv.release("pair/b")
		waitFor(t, 30*time.Second, "b's two copies to complete", func() bool {
			return containBatches(t, env, run.GetID(), run.GetRunID()).endedBatches() == 2
		})
		releaseIntoOneTask(t, env, inv, run, "pair/a", 4, 200)
	})
}

// startHeldIncident starts a contain incident over prefix with a workflow-only worker (so
// no batch runs on it) and returns the run and that worker.
func startHeldIncident(t *testing.T, env *testenv.Env, inv *heldInventory, id, prefix string) (client.WorkflowRun, sdkworker.Worker) {
	t.Helper()
	flows := worker.New(env.Client, inv, sdkworker.Options{LocalActivityWorkerOnly: true})
	if err := flows.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flows.Stop) // for a test that fails before it stops the worker (Stop is idempotent)
	in := workflows.IncidentInput{IncidentID: id, Selector: activities.Selector{Prefix: prefix}, Mode: workflows.ModeContain,
		Reason: "batches drill", Operator: "test", Parallelism: 1}
	run, err := env.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.IncidentWorkflowID(id), TaskQueue: workflows.TaskQueue}, workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	return run, flows
}

// finishHeldIncident starts a fresh workflow worker, waits until the incident has moved on
// from containing, and returns how many secrets it reports contained. The incident is then
// terminated: its rotations are not what the test is about.
func finishHeldIncident(t *testing.T, env *testenv.Env, inv *heldInventory, run client.WorkflowRun) int {
	t.Helper()
	flows := worker.New(env.Client, inv, sdkworker.Options{LocalActivityWorkerOnly: true})
	if err := flows.Start(); err != nil {
		t.Fatal(err)
	}
	defer flows.Stop()
	var p workflows.IncidentProgress
	waitFor(t, 60*time.Second, "the incident to finish containing", func() bool {
		v, err := env.Client.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.QueryProgress)
		return err == nil && v.Get(&p) == nil && p.Total > 0 && p.Phase != workflows.PhaseScope && p.Phase != workflows.PhaseContain
	})
	if err := env.Client.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test: containment checked"); err != nil {
		t.Fatal(err)
	}
	return p.Contained
}

// releaseIntoOneTask releases the revokes held under prefix while the incident's workflow
// is on no worker, waits until the incident's copies (ContainBatch activities, copies in
// all) have ended, and finishes the incident on a fresh worker. It fails the test unless
// exactly those copies were scheduled, none was cancelled, one workflow task brought them
// all, and the incident counts each of its secrets contained once.
func releaseIntoOneTask(t *testing.T, env *testenv.Env, inv *heldInventory, run client.WorkflowRun, prefix string, copies, secrets int) {
	t.Helper()
	inv.release(prefix)
	waitFor(t, 30*time.Second, "the containment batches to complete", func() bool {
		return containBatches(t, env, run.GetID(), run.GetRunID()).endedBatches() == copies
	})
	contained := finishHeldIncident(t, env, inv, run)
	b := containBatches(t, env, run.GetID(), run.GetRunID())
	if len(b.scheduled) != copies || len(b.cancelRequested) != 0 {
		t.Fatalf("ContainBatch copies scheduled %v, cancelled %v: want %d, none cancelled (each had finished)", b.scheduled, b.cancelRequested, copies)
	}
	oneTask(t, env, run, b.scheduled)
	if contained != secrets {
		t.Fatalf("the incident reports %d of %d contained: each secret counts once", contained, secrets)
	}
}

// oneTask fails the test unless the batches scheduled at the given events all completed
// with no workflow task started between the first completion and the last: one task
// brought them all, which is the case the test is about.
func oneTask(t *testing.T, env *testenv.Env, run client.WorkflowRun, scheduled []int64) {
	t.Helper()
	want := map[int64]bool{}
	for _, id := range scheduled {
		want[id] = true
	}
	var seen []string
	completed, tasksBetween := 0, 0
	for _, e := range history(t, env, run.GetID(), run.GetRunID()).GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if want[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
				completed++
				seen = append(seen, fmt.Sprintf("%d completed", e.GetEventId()))
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if completed > 0 && completed < len(scheduled) {
				tasksBetween++
				seen = append(seen, fmt.Sprintf("%d task started", e.GetEventId()))
			}
		}
	}
	if completed != len(scheduled) || tasksBetween != 0 {
		t.Fatalf("the batches' completions and workflow tasks: %s; want %d completions in one task", strings.Join(seen, ", "), len(scheduled))
	}
}

// heldInventory is fake secrets, by prefix, whose revokes wait while their prefix is held,
// and which counts the revokes waiting. The embedded Catalog is the worker's resolver and
// the incident's catalog.
type heldInventory struct {
	*testenv.Catalog
	ids []secret.ID

	mu      sync.Mutex
	held    map[string]chan struct{}   // prefix -> closed on release
	waiters map[string]map[string]bool // prefix -> IDs of the activities waiting
}

func newHeldInventory(store *file.Store, counts map[string]int) *heldInventory {
	inv := &heldInventory{Catalog: testenv.NewCatalog(0), held: map[string]chan struct{}{}, waiters: map[string]map[string]bool{}}
	for prefix, n := range counts {
		for i := range n {
			id := secret.ID(fmt.Sprintf("%s%04d", prefix, i))
			inv.ids = append(inv.ids, id)
			target := &heldTarget{Rotator: fake.New(fake.Twins), inv: inv, prefix: prefix}
			inv.Add(activities.Binding{Kind: "fake", Steps: rotation.Steps{SecretID: id, Rotator: target, Store: store}},
				activities.SecretInfo{ID: id, Kind: "fake", Store: "file", Target: "fake " + string(id)})
		}
	}
	return inv
}

func (h *heldInventory) hold(prefix string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held[prefix] = make(chan struct{})
	h.waiters[prefix] = map[string]bool{}
}

func (h *heldInventory) release(prefix string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.held[prefix])
	delete(h.held, prefix)
}

// waiting is how many activities (batches, or copies of one) have a revoke waiting under
// prefix.
func (h *heldInventory) waiting(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters[prefix])
}

// heldTarget is a fake target whose revoke waits while its prefix is held.
type heldTarget struct {
	*fake.Rotator
	inv    *heldInventory
	prefix string
}

// Revoke implements rotators.Rotator: it waits for the release, then revokes.
func (r *heldTarget) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	r.inv.mu.Lock()
	release, held := r.inv.held[r.prefix]
	if held {
		r.inv.waiters[r.prefix][activity.GetInfo(ctx).ActivityID] = true
	}
	r.inv.mu.Unlock()
	if held {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.Rotator.Revoke(ctx, req)
}

// endedBatches is how many ContainBatch copies have ended.
func (b batchEvents) endedBatches() int {
	n := 0
	for _, id := range b.scheduled {
		if b.ended[id] != 0 {
			n++
		}
	}
	return n
}
