package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/workflows"
)

// envKillN sets the number of roles of BenchmarkIncidentWorkerKilled (default 300).
const envKillN = "KEYTURN_BENCH_KILL_N"

// BenchmarkIncidentWorkerKilled measures whether losing a worker stalls containment: two
// `keyturn worker` processes share Keyturn's task queue, and a contain incident over N
// Postgres roles (default 300, KEYTURN_BENCH_KILL_N) runs twice over the same roles:
// once with both workers alive, once with the worker that runs a ContainBatch SIGKILLed
// the moment the batch has started (found in the incident's pending activities). The
// figure is the time until every old credential was refused (the report's
// AllContainedMs) each way, and their ratio (issue 14's target: at most 1.5). Figures are
// reported, never asserted; an incident that does not contain and rotate every secret
// fails the benchmark. Run it with `make bench-incident-kill`.
func BenchmarkIncidentWorkerKilled(b *testing.B) {
	n := envInt(b, envKillN, 0)
	if n <= 0 {
		b.Skipf("set %s (make bench-incident-kill [N=300]) to run the worker-killed benchmark", envKillN)
	}
	ctx := context.Background()
	env, ids := testenv.NewBulk(b, testenv.BulkOptions{N: n, Prefix: benchPrefix + "k"})
	if err := testenv.SeedVersions(ctx, env.Resolver(b), ids, 16); err != nil {
		b.Fatalf("seed current versions: %v", err)
	}
	bin := buildKeyturn(b)
	procs := []*workerProcess{
		startWorkerProcess(b, bin, env, env.Server.Namespace(), nil),
		startWorkerProcess(b, bin, env, env.Server.Namespace(), nil),
	}

	contain := func(id string, kill bool) (workflows.IncidentReport, time.Duration) {
		in := workflows.IncidentInput{
			IncidentID: id, Selector: activities.Selector{Prefix: benchPrefix},
			Mode: workflows.ModeContain, Reason: "worker-killed benchmark", Operator: "bench",
		}
		run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.IncidentWorkflowID(id), TaskQueue: workflows.TaskQueue,
		}, workflows.IncidentWorkflowName, in)
		if err != nil {
			b.Fatalf("start incident: %v", err)
		}
		var killedAfter time.Duration
		if kill {
			killedAfter = killBatchWorker(b, env.Client, run.GetID(), procs, time.Now())
		}
		var rep workflows.IncidentReport
		if err := run.Get(ctx, &rep); err != nil {
			b.Fatalf("incident %s: %v", id, err)
		}
		if kill {
			writeTimeline(b, env.Client, "The incident with a worker killed", run.GetID(), rep.StartedAt)
		}
		if rep.Contained != n || rep.Rotated != n || rep.Failed != 0 {
			b.Fatalf("incident %s: %d contained, %d rotated, %d failed of %d", id, rep.Contained, rep.Rotated, rep.Failed, n)
		}
		return rep, killedAfter
	}

	b.ResetTimer()
	for b.Loop() {
		base, _ := contain("bench-kill-base-"+strconv.Itoa(n), false)
		killed, after := contain("bench-kill-"+strconv.Itoa(n), true)
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "\ncontain incident over %d roles, two keyturn worker processes\tcontained s\trotated s\t\n", n)
		fmt.Fprintf(w, "both workers alive\t%.2f\t%.2f\t\n", float64(base.AllContainedMs)/1000, float64(base.AllRotatedMs)/1000)
		fmt.Fprintf(w, "one killed %.2f s in, while it ran a ContainBatch\t%.2f\t%.2f\t\n", after.Seconds(), float64(killed.AllContainedMs)/1000, float64(killed.AllRotatedMs)/1000)
		_ = w.Flush()
		for _, r := range []struct {
			name string
			rep  workflows.IncidentReport
		}{{"alive", base}, {"killed", killed}} {
			var ms []int64
			for _, s := range r.rep.Secrets {
				ms = append(ms, s.ContainedMs)
			}
			slices.Sort(ms)
			fmt.Printf("%s: contained after p10 %.2f s, p50 %.2f s, p90 %.2f s, max %.2f s\n", r.name,
				float64(percentile(ms, 10))/1000, float64(percentile(ms, 50))/1000, float64(percentile(ms, 90))/1000, float64(ms[len(ms)-1])/1000)
		}
		ratio := float64(killed.AllContainedMs) / float64(max(base.AllContainedMs, 1))
		fmt.Printf("containment with a worker killed / without: %.2f (target at most 1.5)\n", ratio)
		b.ReportMetric(float64(base.AllContainedMs)/1000, "contained-s")
		b.ReportMetric(float64(killed.AllContainedMs)/1000, "contained-killed-s")
		b.ReportMetric(ratio, "killed/alive")
		b.ReportMetric(0, "ns/op")
	}
}

// killBatchWorker waits until a ContainBatch of the incident has started on one of the
// worker processes and SIGKILLs that process, returning how long after start it did.
func killBatchWorker(b *testing.B, c client.Client, wid string, procs []*workerProcess, start time.Time) time.Duration {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		desc, err := c.DescribeWorkflowExecution(context.Background(), wid, "")
		if err == nil {
			for _, pa := range desc.GetPendingActivities() {
				if pa.GetActivityType().GetName() != "ContainBatch" || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
					continue
				}
				for _, p := range procs {
					if testenv.RanOn(pa.GetLastWorkerIdentity(), p.cmd.Process.Pid) {
						if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
							b.Fatal(err)
						}
						<-p.done
						fmt.Printf("killed the worker process %d, which ran ContainBatch %s\n", p.cmd.Process.Pid, pa.GetActivityId())
						return time.Since(start)
					}
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no ContainBatch started on a worker process within a minute")
	return 0
}

// writeTimeline prints, under title, for the incident's first run, when its workflow
// tasks and its ContainBatch activities timed out, started and completed: where a dead
// worker's work waited.
func writeTimeline(b *testing.B, c client.Client, title, wid string, start time.Time) {
	b.Helper()
	fmt.Printf("\n%s (seconds after its start):\n", title)
	it := c.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	batches := map[int64]bool{}
	workflowOn := ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		at := ev.GetEventTime().AsTime().Sub(start).Seconds()
		if len(batches) == 0 && ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			// Everything before the first batch: what containment waited for.
			name := ev.GetMarkerRecordedEventAttributes().GetMarkerName() + ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			fmt.Printf("  %6.2f  %s %s\n", at, strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_"), name)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			fmt.Printf("  %6.2f  workflow task timed out (%s)\n", at, ev.GetWorkflowTaskTimedOutEventAttributes().GetTimeoutType())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if name != "ContainBatch" && len(batches) == 0 {
				fmt.Printf("  %6.2f  %s scheduled\n", at, name)
			}
			if name == "ContainBatch" {
				batches[ev.GetEventId()] = true
				fmt.Printf("  %6.2f  ContainBatch scheduled (event %d)\n", at, ev.GetEventId())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := ev.GetActivityTaskStartedEventAttributes(); batches[a.GetScheduledEventId()] {
				fmt.Printf("  %6.2f  ContainBatch %d started, attempt %d, on %s\n", at, a.GetScheduledEventId(), a.GetAttempt(), a.GetIdentity())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if a := ev.GetActivityTaskCompletedEventAttributes(); batches[a.GetScheduledEventId()] {
				fmt.Printf("  %6.2f  ContainBatch %d completed\n", at, a.GetScheduledEventId())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			if a := ev.GetActivityTaskTimedOutEventAttributes(); batches[a.GetScheduledEventId()] {
				fmt.Printf("  %6.2f  ContainBatch %d timed out\n", at, a.GetScheduledEventId())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
			if a := ev.GetActivityTaskCancelRequestedEventAttributes(); batches[a.GetScheduledEventId()] {
				fmt.Printf("  %6.2f  ContainBatch %d cancel requested\n", at, a.GetScheduledEventId())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			if a := ev.GetActivityTaskCanceledEventAttributes(); batches[a.GetScheduledEventId()] {
				fmt.Printf("  %6.2f  ContainBatch %d ended cancelled\n", at, a.GetScheduledEventId())
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			// Where the incident's own workflow runs: a task on the killed worker waits out
			// the sticky timeout before another worker takes it.
			if id := ev.GetWorkflowTaskStartedEventAttributes().GetIdentity(); id != workflowOn {
				workflowOn = id
				fmt.Printf("  %6.2f  the incident's workflow tasks run on %s\n", at, id)
			}
		}
	}
}
