package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// The sustained scheduled benchmark's knobs (make bench-scheduled).
const (
	envScheduledN        = "KEYTURN_BENCH_SCHEDULED_N"        // rotations, one per secret
	envScheduledInFlight = "KEYTURN_BENCH_SCHEDULED_INFLIGHT" // scheduled runs open at once
)

// scheduledFloorQueue is the task queue of the scheduled floor, apart from Keyturn's.
const scheduledFloorQueue = "bench-scheduled-floor"

// BenchmarkScheduledSustained measures scheduled rotations at a sustained rate: N
// ScheduledRotate runs, the workflow each schedule starts, one per Postgres secret (each
// with a current version, so every rotation revokes one), kept at a constant number in flight, as
// many schedules firing around the same time would. The figure is rotations per second
// against the engine's floor measured in the same run: the same closed loop of bare
// parents, each running one child of four bare activities, as a scheduled run runs its
// Rotate. The target is at least 0.8 times the floor's rate.
//
// The runs are started by the client rather than by Temporal schedules, which fire at
// most once a second each: the benchmark measures what the engine and Keyturn sustain,
// not the schedules' cadence. (schedules.TestScheduleTriggerRunsARealRotation covers a
// real schedule starting the same workflow.)
func BenchmarkScheduledSustained(b *testing.B) {
	n := envInt(b, envScheduledN, 0)
	if n <= 0 {
		b.Skipf("set %s (make bench-scheduled [SCHEDULED_N=1000]) to run the sustained scheduled benchmark", envScheduledN)
	}
	inFlight := envInt(b, envScheduledInFlight, 100)
	ctx := context.Background()
	env, ids := testenv.NewBulk(b, testenv.BulkOptions{
		N: n, Prefix: "bench-sched/s",
		PostgresSettings: map[string]string{"max_connections": strconv.Itoa(max(300, inFlight+100)), "fsync": "on"},
	})
	resolver := env.Resolver(b)
	opts := wideWorkerOptions(inFlight, 2)
	env.StartWorkerWith(b, resolver, opts)
	if err := testenv.SeedVersions(ctx, resolver, ids, 16); err != nil {
		b.Fatalf("seed current versions: %v", err)
	}

	// The floor first, so that Keyturn's runs meet the server's larger history, not it.
	floorBefore := sampleCPU(env.Cluster.Port)
	floorWall := measureScheduledFloor(b, env.Client, n, inFlight, opts)
	floorCPU := sampleCPU(env.Cluster.Port).sub(floorBefore)

	b.ResetTimer()
	cpuBefore := sampleCPU(env.Cluster.Port)
	start := time.Now()
	closedLoop(b, len(ids), inFlight, func(i int) error {
		id := ids[i]
		// Started as a schedule's action starts it: with its attributes already set.
		in := workflows.ScheduledInput{SecretID: id, StartAttributes: true}
		run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "bench-scheduled/" + string(id), TaskQueue: workflows.TaskQueue, TypedSearchAttributes: in.Attributes(),
		}, workflows.ScheduledWorkflowName, in)
		if err != nil {
			return err
		}
		var res workflows.ScheduledResult
		if err := run.Get(ctx, &res); err != nil {
			return err
		}
		if res.Outcome != workflows.OutcomeRotated {
			return fmt.Errorf("scheduled run of %s: outcome %q (%s)", id, res.Outcome, res.Reason)
		}
		return nil
	})
	keyturnWall := time.Since(start)
	b.StopTimer()
	cpu := sampleCPU(env.Cluster.Port).sub(cpuBefore)
	checkRotatedOnce(b, env, ids)
	rate, floorRate := float64(n)/keyturnWall.Seconds(), float64(n)/floorWall.Seconds()
	fmt.Printf("\n%d scheduled rotations, %d in flight: %.1f s, %.1f rotations/s\n", n, inFlight, keyturnWall.Seconds(), rate)
	fmt.Printf("engine floor in this run: %d bare parents of one child of 4 activities, %d in flight: %.1f s, %.1f runs/s\n", n, inFlight, floorWall.Seconds(), floorRate)
	fmt.Printf("%.2f times the floor's rate (target at least 0.8)\n", rate/floorRate)
	// The floor has no target: PostgreSQL's CPU (each rotation's ALTER ROLEs and Test's
	// fresh login) is work the floor never does.
	bound := postgresBound(floorCPU, cpu)
	writeCPU("Keyturn", floorCPU, cpu)
	fmt.Printf("so even if the engine cost no more CPU than the floor, the floor's CPU plus PostgreSQL's on %d cores, all busy, take at least %.1f s for the %d rotations: at most %.2f times the floor's rate on this machine\n",
		runtime.NumCPU(), bound.Seconds(), n, floorWall.Seconds()/bound.Seconds())
	b.ReportMetric(floorWall.Seconds()/bound.Seconds(), "ratio-bound-by-postgres")
	b.ReportMetric(rate, "rotations/s")
	b.ReportMetric(floorRate, "floor-runs/s")
	b.ReportMetric(rate/floorRate, "ratio")
	b.ReportMetric(0, "ns/op")
}

// closedLoop runs do(0..n-1), inFlight at a time, each starting as soon as one ends, and
// fails the benchmark on the first error.
func closedLoop(b *testing.B, n, inFlight int, do func(i int) error) {
	b.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		next     int
		firstErr error
	)
	for range min(inFlight, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// checkRotatedOnce checks, untimed, on a sample, that each secret's current version is
// its second: seeded, then rotated exactly once by its scheduled run.
func checkRotatedOnce(b *testing.B, env *testenv.Env, ids []secret.ID) {
	b.Helper()
	for _, id := range pickSample(ids, 50) {
		v, _, err := env.Store.Read(context.Background(), id, secret.StageCurrent)
		if err != nil || v.Number != 2 {
			b.Fatalf("%s: current version %d (%v), want 2: seeded once, rotated once", id, v.Number, err)
		}
	}
}

// scheduledFloorParent is the floor of a scheduled run: it starts one child of n bare
// activities and waits for it, as ScheduledRotate starts Rotate.
func scheduledFloorParent(ctx workflow.Context, n int) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "/child",
	})
	return workflow.ExecuteChildWorkflow(cctx, fanOutChild, n).Get(ctx, nil)
}

// measureScheduledFloor runs n floor parents through the same closed loop, on a worker of
// the same options on its own queue, and returns the wall time.
func measureScheduledFloor(b *testing.B, c client.Client, n, inFlight int, opts sdkworker.Options) time.Duration {
	b.Helper()
	defer startFloorWorker(b, c, scheduledFloorQueue, opts, scheduledFloorParent)()
	ctx := context.Background()
	start := time.Now()
	closedLoop(b, n, inFlight, func(i int) error {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "bench-scheduled-floor/" + strconv.Itoa(i), TaskQueue: scheduledFloorQueue,
		}, scheduledFloorParent, 4)
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	})
	return time.Since(start)
}
