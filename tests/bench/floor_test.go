package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// fanOutQueue is the task queue of the fan-out floor, apart from Keyturn's.
const fanOutQueue = "bench-fanout-floor"

// fanOut is the input of the floor's parent: N children of Activities bare activities
// each, at most Parallel running at once.
type fanOut struct {
	N, Parallel, Activities int
}

// fanOutParent is the engine's floor for an incident's rotations: a parent that starts N
// bare children, Parallel at a time, as the incident starts its rotations, each child
// running the same number of activities as a rotation does, doing nothing.
func fanOutParent(ctx workflow.Context, in fanOut) error {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	sel := workflow.NewSelector(ctx)
	var firstErr error
	started, running := 0, 0
	for started < in.N || running > 0 {
		for running < in.Parallel && started < in.N {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: fmt.Sprintf("%s/%d", id, started)})
			sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, fanOutChild, in.Activities), func(f workflow.Future) {
				running--
				if err := f.Get(ctx, nil); err != nil && firstErr == nil {
					firstErr = err
				}
			})
			started++
			running++
		}
		sel.Select(ctx)
	}
	return firstErr
}

// fanOutChild runs n bare activities in a row.
func fanOutChild(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	for range n {
		if err := workflow.ExecuteActivity(ctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// wideWorkerOptions are the worker options of a benchmark with up to inFlight workflows
// open at once: room for twice as many tasks of each kind (at least 1,000), so the
// worker's slots never throttle what is measured, and the given number of pollers.
func wideWorkerOptions(inFlight, pollers int) sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize:      max(1000, 2*inFlight),
		MaxConcurrentLocalActivityExecutionSize: max(1000, 2*inFlight),
		MaxConcurrentWorkflowTaskExecutionSize:  max(1000, 2*inFlight),
		MaxConcurrentWorkflowTaskPollers:        pollers,
		MaxConcurrentActivityTaskPollers:        pollers,
	}
}

// startFloorWorker runs a worker of the given options on queue for a floor whose parent
// workflow runs fanOutChild children, until the returned stop.
func startFloorWorker(b *testing.B, c client.Client, queue string, opts sdkworker.Options, parent any) (stop func()) {
	b.Helper()
	w := sdkworker.New(c, queue, opts)
	w.RegisterWorkflow(parent)
	w.RegisterWorkflow(fanOutChild)
	w.RegisterActivity(noopActivity)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	return w.Stop
}

// measureFanOutFloor runs the fan-out floor once on c, with a worker of the given options
// on its own queue, and returns its wall time.
func measureFanOutFloor(b *testing.B, c client.Client, in fanOut, opts sdkworker.Options) time.Duration {
	b.Helper()
	defer startFloorWorker(b, c, fanOutQueue, opts, fanOutParent)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: fanOutQueue}, fanOutParent, in)
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		b.Fatalf("fan-out floor: %v", err)
	}
	return time.Since(start)
}
