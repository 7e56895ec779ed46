// Package bench measures a real Postgres rotation against a bare workflow of four no-op
// activities, in one process on the embedded Temporal server, and reports both and their
// ratio; what telemetry costs that rotation (telemetry_test.go); and the incident
// playbook over thousands of secrets (incident_test.go, `make bench-incident`). Run with
// `make bench`. Figures are reported, never asserted.
package bench

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

const noopQueue = "bench-noop"

func noopActivity(context.Context) error { return nil }

// noopWorkflow has the shape of a rotation without its work: four activities in a row.
func noopWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	for range 4 {
		if err := workflow.ExecuteActivity(ctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// quickShapeWorkflow has the shape of a generation-4 rotation without its work: a local
// activity (plan), two regular ones (create, test), a local one (promote) and a regular
// one (revoke). It is the engine's floor for that shape.
func quickShapeWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for _, local := range []bool{true, false, false, true, false} {
		f := workflow.ExecuteActivity(ctx, noopActivity)
		if local {
			f = workflow.ExecuteLocalActivity(lctx, noopActivity)
		}
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkRotationVsNoop(b *testing.B) {
	// Durable, as a user's cluster is (the test clusters run with fsync off), and the
	// same cluster for the anchor below.
	env := testenv.New(b, testenv.Options{
		Secrets:          []demo.Secret{{ID: "bench/app", Strategy: "alternating", Grace: "0s"}},
		PostgresSettings: map[string]string{"fsync": "on"},
	})
	startNoopWorker(b, env.Client)
	noop := func() time.Duration { return runNoop(b, env.Client, noopWorkflow) }
	quickShape := func() time.Duration { return runNoop(b, env.Client, quickShapeWorkflow) }
	var lastRun client.WorkflowRun
	rotate := func() time.Duration {
		d, run := rotateOnce(b, env.Client, "bench/app")
		lastRun = run
		return d
	}
	for range 3 { // warm up connections, caches and the task queues
		noop()
		quickShape()
		rotate()
	}

	var noops, shapes, rotations []time.Duration
	b.ResetTimer()
	for b.Loop() {
		noops = append(noops, noop())
		shapes = append(shapes, quickShape())
		rotations = append(rotations, rotate())
	}
	b.StopTimer()

	ctx := context.Background()
	events := 0
	it := env.Client.GetWorkflowHistory(ctx, lastRun.GetID(), lastRun.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			b.Fatal(err)
		}
		events++
	}
	np50, np95 := percentile(noops, 50), percentile(noops, 95)
	rp50, rp95 := percentile(rotations, 50), percentile(rotations, 95)
	b.ReportMetric(ms(np50), "noop-p50-ms")
	b.ReportMetric(ms(np95), "noop-p95-ms")
	b.ReportMetric(ms(rp50), "rotate-p50-ms")
	b.ReportMetric(ms(rp95), "rotate-p95-ms")
	b.ReportMetric(float64(rp50)/float64(np50), "ratio-p50")
	b.ReportMetric(float64(rp95)/float64(np95), "ratio-p95")
	// The same shape as the rotation (two local activities and three regular) with no
	// work: what is left above it is Keyturn's own work and the targets'.
	sp50 := percentile(shapes, 50)
	b.ReportMetric(ms(sp50), "shape-p50-ms")
	b.ReportMetric(float64(rp50)/float64(sp50), "ratio-shape-p50")
	b.ReportMetric(float64(events), "events/rotation")
	// The anchor, in the same run on the same cluster: Vault's database engine rotating a
	// static role (one ALTER ROLE, no test, no grace).
	vp50, _ := measureVaultStaticRotate(b, env.Cluster, len(rotations))
	b.ReportMetric(ms(vp50), "vault-rotate-p50-ms")
	b.ReportMetric(float64(rp50)/float64(vp50), "ratio-vault-p50")
	b.ReportMetric(0, "ns/op") // the per-op time mixes both workflows; the metrics above are the figures
}

// startNoopWorker runs the bare workflow's worker on c until the benchmark ends.
func startNoopWorker(b *testing.B, c client.Client) {
	b.Helper()
	w := sdkworker.New(c, noopQueue, sdkworker.Options{})
	w.RegisterWorkflow(noopWorkflow)
	w.RegisterWorkflow(quickShapeWorkflow)
	w.RegisterActivity(noopActivity)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
}

// runTimeout bounds one workflow run of the benchmarks: a worker that died fails the
// benchmark instead of hanging it.
const runTimeout = 2 * time.Minute

// runNoop runs a bare workflow once through c and returns how long it took.
func runNoop(b *testing.B, c client.Client, wf func(workflow.Context) error) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: noopQueue}, wf)
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		b.Fatalf("no-op workflow: %v", err)
	}
	return time.Since(start)
}

// rotateOnce rotates a secret through c, as `keyturn rotate --wait` does, fails the
// benchmark unless it rotated, and returns how long it took and its run.
func rotateOnce(b *testing.B, c client.Client, id secret.ID) (time.Duration, client.WorkflowRun) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	var res workflows.RotateResult
	if err == nil {
		err = run.Get(ctx, &res)
	}
	if err != nil || res.Outcome != workflows.OutcomeRotated {
		b.Fatalf("rotation of %s: %v (outcome %q)", id, err, res.Outcome)
	}
	return time.Since(start), run
}

// percentile is the p-th percentile of xs (nearest rank), which it leaves unsorted.
func percentile[T cmp.Ordered](xs []T, p int) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
