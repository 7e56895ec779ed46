package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// The scale benchmark's knobs: envScaleN secrets (`make bench-incident-scale SCALE_N=50000`),
// and envScaleFloor=1 to also measure the engine's fan-out floor on the same server.
const (
	envScaleN     = "KEYTURN_BENCH_SCALE_N"
	envScaleFloor = "KEYTURN_BENCH_SCALE_FLOOR"
)

// scalePrefix starts the ID of every secret of the scale benchmark; the incident selects it.
const scalePrefix = "scale/"

// Temporal's default per-workflow limits (dynamic config limit.blobSize.*,
// limit.historyCount.*, limit.historySize.*), which the embedded server keeps. Above an
// error limit the server fails the call or terminates the workflow.
const (
	payloadErrorLimit     = 2 << 20   // one payload (input or result of anything)
	payloadWarnLimit      = 512 << 10 // the server logs a warning above this
	historyEventsLimit    = 51200     // events in one run's history
	historyBytesLimit     = 50 << 20  // bytes of one run's history
	scaleChildSample      = 20        // Rotate children whose histories are described
	scaleOverflowPatience = 2 * time.Minute
)

// BenchmarkIncidentScale checks issue 14 item 4: an incident's fan-out stays inside
// Temporal's per-workflow limits at 10,000 and 50,000 secrets. It runs the incident
// playbook in contain mode over N secrets of the in-memory fake kind (rotators/fake, one
// fake target per secret) kept in the file store, on the real embedded Temporal server,
// with the production payload codec. Nothing is slow but the engine, so the figures are
// Temporal's and the workflows', not a target's.
//
// It reports the seeding time, the time to the incident's result, AllContainedMs and
// AllRotatedMs, the largest payload any client or worker sent (encrypted, as the server
// stores it) against the 2 MiB limit and what it was, the history (events and bytes) of
// each run of the incident's continue-as-new chain and of each workflow it started
// other than a Rotate (one between it and the rotations), and the largest history of a
// sample of its Rotate children. A failed incident, a payload above 2 MiB or a run above
// 51,200 events or 50 MiB fails the benchmark: those are Temporal's hard limits.
// Timings are reported, never asserted. Run with `make bench-incident-scale` (N=10000)
// or `make bench-incident-scale SCALE_N=50000`.
func BenchmarkIncidentScale(b *testing.B) {
	n := envInt(b, envScaleN, 0)
	if n <= 0 {
		b.Skipf("set %s (make bench-incident-scale [SCALE_N=50000]) to run the scale benchmark", envScaleN)
	}
	ctx := context.Background()
	loadBefore := loadAverage()

	// The server's and the SDK's warnings are kept, not printed: the server's own
	// size-limit warnings are counted at the end, beside what the recorder measured.
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	srv := testenv.Temporal(b, logger)

	// One client for the worker and for starting the incident, so every payload either
	// sends goes through the recorder. The recorder wraps the production codec: it sees
	// each payload after encryption, at the size the server receives and checks.
	keys, err := codec.LoadKeyFile(filepath.Join(b.TempDir(), "codec.key"), true)
	if err != nil {
		b.Fatal(err)
	}
	prod, err := codec.New(keys...)
	if err != nil {
		b.Fatal(err)
	}
	rec := &payloadRecorder{inner: prod, overWarn: map[string]int{}}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), rec)
	c, err := client.Dial(client.Options{
		HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: log.NewStructuredLogger(logger),
		DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
	})
	if err != nil {
		b.Fatalf("dial Temporal: %v", err)
	}
	b.Cleanup(c.Close)

	store, err := file.Open(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatalf("open file store: %v", err)
	}
	inv, ids := newScaleInventory(n, store)
	// worker.New takes the resolver as the incident's catalog when it is one, as it takes
	// binding.Resolver in production; no audit trail (it is not what is measured here).
	parallel := workflows.DefaultIncidentParallelism
	workerOpts := wideWorkerOptions(parallel, 2)
	w := worker.New(c, inv, workerOpts)
	if err := w.Start(); err != nil {
		b.Fatalf("start worker: %v", err)
	}
	b.Cleanup(w.Stop)
	setup := time.Since(start)

	// Every secret gets a current version, as a first rotation would, so containment has
	// something to revoke and each rotation a version to replace.
	start = time.Now()
	if err := testenv.SeedVersions(ctx, inv, ids, 16); err != nil {
		b.Fatalf("seed current versions: %v", err)
	}
	seeding := time.Since(start)
	b.Logf("server, worker and %d fake secrets ready in %s; seeded a current version of each in %s (untimed)",
		n, setup.Round(time.Millisecond), seeding.Round(time.Millisecond))

	rec.reset() // the figures are the incident's
	in := workflows.IncidentInput{
		IncidentID: fmt.Sprintf("scale-%d", n), Selector: activities.Selector{Prefix: scalePrefix},
		Mode: workflows.ModeContain, Reason: "scale benchmark", Operator: "bench",
	}
	cpuBefore := sampleCPU(0)
	b.ResetTimer()
	start = time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.IncidentWorkflowID(in.IncidentID), TaskQueue: workflows.TaskQueue,
	}, workflows.IncidentWorkflowName, in)
	if err != nil {
		b.Fatalf("start incident: %v", err)
	}
	// Read before Get: once Get has followed the continue-as-new chain, GetRunID names
	// the last run.
	firstRun := run.GetRunID()
	stopProgress := followProgress(b, c, run.GetID(), start)
	var rep workflows.IncidentReport
	incidentErr := waitIncident(ctx, b, run, rec, &rep)
	wall := time.Since(start)
	b.StopTimer()
	stopProgress()
	cpu := sampleCPU(0).sub(cpuBefore)
	loadAfter := loadAverage()

	// Untimed: what the server holds of the incident's runs, of the workflows between it
	// and its rotations if any, and of a sample of its rotations.
	runs := describeRuns(b, c, run.GetID(), firstRun)
	children := describeChildren(b, c, ids)
	largest, largestWhat, payloads, overWarn := rec.figures()

	fmt.Printf("\nIncident over %d fake secrets (contain mode, parallelism %d) on the embedded Temporal server, %d cores\n", n, parallel, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tseed s\tresult s\tcontained s\trotated s\tdone\tfailed\tpayloads\tlargest B\tof 2 MiB\t")
	fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%d\t%.1f%%\t\n", n, seeding.Seconds(), wall.Seconds(),
		float64(rep.AllContainedMs)/1000, float64(rep.AllRotatedMs)/1000, rep.Done, rep.Failed, payloads, largest, 100*float64(largest)/payloadErrorLimit)
	_ = tw.Flush()
	fmt.Printf("largest payload: %d bytes: %s\n", largest, largestWhat)
	if len(overWarn) > 0 {
		fmt.Printf("payloads above the server's 512 KiB warning (largest of each shape):\n")
		for _, p := range overWarn {
			fmt.Printf("  %9d bytes  %s\n", p.size, p.what)
		}
	}
	for msg, k := range serverLimitWarnings(logs.String()) {
		fmt.Printf("logged %d times: %q\n", k, msg)
	}

	fmt.Printf("\nRuns of the incident and of the workflows it started other than Rotate (limits: %d events, %d MiB each):\n", historyEventsLimit, historyBytesLimit>>20)
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workflow ID\ttype\tstatus\tevents\tbytes\tMiB\t")
	maxEvents, maxBytes := int64(0), int64(0)
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.2f\t\n", r.workflowID, r.workflowType, r.status, r.events, r.bytes, float64(r.bytes)/(1<<20))
		maxEvents, maxBytes = max(maxEvents, r.events), max(maxBytes, r.bytes)
	}
	_ = tw.Flush()
	fmt.Printf("largest of %d sampled Rotate children: %d events, %d bytes (%s)\n", children.sampled, children.events, children.bytes, children.id)
	fmt.Printf("CPU during the incident (%.1f s wall, %d cores = %.1f core-s): this process (server + worker) %.1f s, machine busy %.0f%%\n",
		wall.Seconds(), runtime.NumCPU(), float64(runtime.NumCPU())*wall.Seconds(), cpu.self.Seconds(), 100*cpu.machineBusy.Seconds()/max(cpu.total.Seconds(), 1e-9))
	fmt.Printf("load average before: %s; after: %s\n", loadBefore, loadAfter)

	b.ReportMetric(seeding.Seconds(), "seed-s")
	b.ReportMetric(wall.Seconds(), "result-s")
	b.ReportMetric(float64(rep.AllContainedMs)/1000, "contained-s")
	b.ReportMetric(float64(rep.AllRotatedMs)/1000, "rotated-s")
	b.ReportMetric(float64(largest), "largest-payload-B")
	b.ReportMetric(float64(largest)/payloadErrorLimit, "payload/limit")
	b.ReportMetric(float64(incidentRuns(runs, run.GetID())), "incident-runs")
	b.ReportMetric(float64(maxEvents), "max-run-events")
	b.ReportMetric(float64(maxBytes), "max-run-B")
	b.ReportMetric(0, "ns/op")

	if os.Getenv(envScaleFloor) == "1" {
		// The engine's floor on the same server: as many bare children of 4 activities
		// (create, test, promote, revoke), as many at a time, from one parent.
		floor := measureFanOutFloor(b, c, fanOut{N: n, Parallel: parallel, Activities: 4}, workerOpts)
		fmt.Printf("engine floor: %d bare children of 4 activities, %d at a time: %.2f s; rotations done at %.2f s: %.2f times the floor\n",
			n, parallel, floor.Seconds(), float64(rep.AllRotatedMs)/1000, float64(rep.AllRotatedMs)/1000/floor.Seconds())
		b.ReportMetric(floor.Seconds(), "floor-s")
	}

	// Correctness: Temporal's hard limits and the incident's own outcome.
	var problems []string
	if incidentErr != nil {
		problems = append(problems, fmt.Sprintf("incident: %v (%d/%d done, %d failed)", incidentErr, rep.Done, rep.Total, rep.Failed))
	} else if rep.Contained != n || rep.Rotated != n || rep.Failed != 0 {
		problems = append(problems, fmt.Sprintf("incident: %d contained, %d rotated, %d failed of %d", rep.Contained, rep.Rotated, rep.Failed, n))
	}
	if largest > payloadErrorLimit {
		problems = append(problems, fmt.Sprintf("a payload of %d bytes is above Temporal's 2 MiB limit: %s", largest, largestWhat))
	}
	for _, r := range runs {
		if r.events > historyEventsLimit || r.bytes > historyBytesLimit {
			problems = append(problems, fmt.Sprintf("%s run %s has %d events, %d bytes: above Temporal's limits", r.workflowID, r.runID, r.events, r.bytes))
		}
	}
	if len(problems) > 0 {
		b.Fatalf("%s", strings.Join(problems, "; "))
	}
}

// newScaleInventory makes the worker's inventory for the scale benchmark: N fake secrets
// scale/00000 and up, each with its own fake target (a fake holds one pair of twin
// roles), kept in the one file store. Their SecretInfo looks like what
// binding.SecretInfos makes of a real inventory (store "file:<path>", a target with host,
// port and role), since the incident carries it in its payloads and its size matters.
func newScaleInventory(n int, store *file.Store) (*testenv.Catalog, []secret.ID) {
	inv := testenv.NewCatalog(n)
	ids := make([]secret.ID, n)
	for i := range n {
		id := secret.ID(fmt.Sprintf("%s%05d", scalePrefix, i))
		ids[i] = id
		inv.Add(activities.Binding{
			Kind:  "fake",
			Steps: rotation.Steps{SecretID: id, Rotator: fake.New(fake.Twins), Store: store},
		}, activities.SecretInfo{
			ID: id, Kind: "fake", Store: "file:/var/lib/keyturn/store",
			Target: fmt.Sprintf("fake 10.0.%d.%d:5432 role app_%05d (alternating)", i/250, i%250+1, i),
		})
	}
	return inv, ids
}

// waitIncident waits for the incident's result through its continue-as-new chain. If a
// payload above the error limit was sent and the incident has not ended within
// scaleOverflowPatience, it stops waiting: a workflow task the server keeps refusing
// could otherwise keep it waiting until the test's timeout.
func waitIncident(ctx context.Context, b *testing.B, run client.WorkflowRun, rec *payloadRecorder, rep *workflows.IncidentReport) error {
	b.Helper()
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, rep) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if at, ok := rec.overflowed(); ok && time.Since(at) > scaleOverflowPatience {
				largest, what, _, _ := rec.figures()
				return fmt.Errorf("not ended %s after a payload of %d bytes (%s) was sent", scaleOverflowPatience, largest, what)
			}
		}
	}
}

// runHistory is one run of a workflow as the server describes it.
type runHistory struct {
	workflowID, runID string
	workflowType      string
	status            string
	events, bytes     int64
}

// describeRuns describes every run of workflow id from runID on (its continue-as-new
// chain) and, after each run, the runs of every child it started that is not a Rotate:
// a workflow between the incident and its rotations (as a page of the scope would be)
// has a history of its own, under the same limits. The Rotate children, one per secret,
// are sampled apart (describeChildren).
func describeRuns(b *testing.B, c client.Client, id, runID string) []runHistory {
	b.Helper()
	ctx := context.Background()
	var out []runHistory
	for runID != "" {
		d, err := c.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			b.Fatalf("describe %s run %s: %v", id, runID, err)
		}
		info := d.GetWorkflowExecutionInfo()
		out = append(out, runHistory{
			workflowID: id, runID: runID, workflowType: info.GetType().GetName(),
			status: strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"),
			events: info.GetHistoryLength(), bytes: info.GetHistorySizeBytes(),
		})
		// The history names the children started and, in its close event, the next run.
		next := ""
		var children []*commonpb.WorkflowExecution
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				b.Fatalf("history of %s run %s: %v", id, runID, err)
			}
			if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil && a.GetWorkflowType().GetName() != workflows.RotateWorkflowName {
				children = append(children, a.GetWorkflowExecution())
			}
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		for _, ch := range children {
			out = append(out, describeRuns(b, c, ch.GetWorkflowId(), ch.GetRunId())...)
		}
		runID = next
	}
	return out
}

// incidentRuns counts the runs of the incident's own continue-as-new chain.
func incidentRuns(runs []runHistory, id string) int {
	k := 0
	for _, r := range runs {
		if r.workflowID == id {
			k++
		}
	}
	return k
}

// childHistories is the largest history among a sample of the incident's Rotate children.
type childHistories struct {
	sampled       int
	id            string
	events, bytes int64
}

// describeChildren describes the Rotate workflows of scaleChildSample secrets spread over
// the scope and returns the largest history (by events; bytes is the largest too).
func describeChildren(b *testing.B, c client.Client, ids []secret.ID) childHistories {
	b.Helper()
	ctx := context.Background()
	k := min(scaleChildSample, len(ids))
	var out childHistories
	for i := range k {
		wid := workflows.RotateWorkflowID(ids[i*len(ids)/k])
		d, err := c.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			b.Errorf("describe %s: %v", wid, err)
			continue
		}
		out.sampled++
		info := d.GetWorkflowExecutionInfo()
		if info.GetHistoryLength() > out.events {
			out.events, out.id = info.GetHistoryLength(), wid
		}
		out.bytes = max(out.bytes, info.GetHistorySizeBytes())
	}
	return out
}

// serverLimitMsg picks the message out of a slog text line.
var serverLimitMsg = regexp.MustCompile(`msg="([^"]*)"`)

// serverLimitWarnings counts the warnings the server and the SDK logged about a size or
// count limit, by message: the server's own view of what the recorder measured.
func serverLimitWarnings(logs string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(strings.ToLower(line), "limit") {
			continue
		}
		msg := line
		if m := serverLimitMsg.FindStringSubmatch(line); m != nil {
			msg = m[1]
		}
		out[msg]++
	}
	return out
}

// loadAverage returns the first three fields of /proc/loadavg (1, 5 and 15 minutes):
// other work on the machine shows up in the timings.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
