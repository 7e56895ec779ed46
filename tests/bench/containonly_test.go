package bench

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/workflows"
)

// cliProcess is the `keyturn incident start` process of BenchmarkIncidentCLI and what
// reads its output.
type cliProcess struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	pw     *io.PipeWriter
	read   chan struct{}
	lines  *cliLines
	// exited is closed once the process has ended.
	exited chan struct{}
}

// watch notes when the started process ends.
func (p *cliProcess) watch() *cliProcess {
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		_ = p.pw.Close()
		close(p.exited)
	}()
	return p
}

// stop ends the CLI (it follows an incident that will not end by itself) and waits until
// its output has been read.
func (p *cliProcess) stop() {
	p.cancel()
	<-p.exited
	<-p.read
}

// cliRun is one run of BenchmarkIncidentCLI under way: the incident's ID and size, and
// the processes and attackers around it.
type cliRun struct {
	c                   client.Client
	id                  string
	n                   int
	start               time.Time
	cli                 *cliProcess
	worker              *workerProcess
	att                 *attack
	stopAttack          func()
	attackers, attacked int
	// pgPort is the PostgreSQL cluster's, cpu0 and workerCPU0 the CPU times at the start.
	pgPort     int
	cpu0       cpuSample
	workerCPU0 time.Duration
}

// benchContainOnly ends BenchmarkIncidentCLI once the incident reports its whole scope
// contained: it reports the containment figures, then terminates the incident before its
// rotations and stops the CLI.
func benchContainOnly(b *testing.B, r cliRun) {
	b.Helper()
	c, id, n, cli, att, start := r.c, r.id, r.n, r.cli, r.att, r.start
	wid := workflows.IncidentWorkflowID(id)
	defer cli.stop()
	prog, err := waitContained(c, wid, cli, 10*time.Minute)
	if err != nil {
		b.Fatalf("%v\n%s", err, cli.lines.String())
	}
	b.StopTimer()
	wall := time.Since(start)
	cpu, workerCPU := sampleCPU(r.pgPort).sub(r.cpu0), r.worker.cpu(b)-r.workerCPU0
	allRefused := att.wait(30 * time.Second)
	r.stopAttack()
	<-att.done
	startedAt, err := firstTaskStarted(c, wid)
	if err != nil {
		b.Fatalf("incident history: %v", err)
	}
	if err := c.TerminateWorkflow(context.Background(), wid, "", "benchmark: containment measured, rotations not"); err != nil {
		b.Fatalf("terminate the incident: %v", err)
	}
	if prog.Contained != n {
		b.Fatalf("incident: %d of %d contained", prog.Contained, n)
	}
	fmt.Printf("\nN %d: contained in %.2f s after the workflow started; the incident was then terminated (%s set: rotations not measured)\n",
		n, float64(prog.AllContainedMs)/1000, envCLIContainOnly)
	fmt.Printf("CPU from the CLI's start until the incident reported its scope contained (%.2f s, %d cores, machine %.0f%% busy): the worker %.1f s, PostgreSQL %.1f s, this process (the Temporal server, the attackers' clients, the catalog watch) %.1f s\n",
		wall.Seconds(), runtime.NumCPU(), 100*cpu.busy(), workerCPU.Seconds(), cpu.postgres.Seconds(), cpu.self.Seconds())
	writeSweep(r.worker.out.String())
	writeCLIStart(cli.lines, id, startedAt.Sub(start))
	writeTimeline(b, c, "The incident's containment", wid, startedAt)
	writeBatchPhases(r.worker.out.String())
	writeAttack(att, len(att.creds), r.attacked, r.attackers, allRefused)
	checkAttack(b, att, allRefused, "the scope was contained")
	reportTargets(n, workflows.IncidentReport{StartedAt: startedAt, IncidentProgress: prog}, start, att.refusedFrom())
	b.ReportMetric(att.refusedFrom().Seconds(), "refused-s")
	b.ReportMetric(0, "ns/op")
}

// waitContained asks the incident for its progress until it has contained its whole
// scope, or moved on from containing; an error when the CLI exits first or the timeout
// passes.
func waitContained(c client.Client, wid string, cli *cliProcess, timeout time.Duration) (workflows.IncidentProgress, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-cli.exited:
			return workflows.IncidentProgress{}, fmt.Errorf("keyturn incident start exited before the scope was contained")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.QueryWorkflow(ctx, wid, "", workflows.QueryProgress)
		cancel()
		var p workflows.IncidentProgress
		// The counts grow batch by batch: the scope is contained once the incident has
		// moved on from containing (a secret whose batch failed is its rotation's to contain).
		if err == nil && v.Get(&p) == nil && p.Total > 0 && (p.Contained == p.Total || p.Phase != workflows.PhaseScope && p.Phase != workflows.PhaseContain) {
			return p, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return workflows.IncidentProgress{}, fmt.Errorf("the incident did not report its scope contained within %s", timeout)
}

// firstTaskStarted is when the workflow's first task started: the time its code reads as
// the incident's start (IncidentReport.StartedAt).
func firstTaskStarted(c client.Client, wid string) (time.Time, error) {
	it := c.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return time.Time{}, err
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED {
			return ev.GetEventTime().AsTime(), nil
		}
	}
	return time.Time{}, fmt.Errorf("no workflow task has started")
}

// writeSweep says whether the worker's secret sweep (its first runs as the worker starts)
// stood aside for the containment, from its log.
func writeSweep(workerLog string) {
	for _, line := range strings.Split(workerLog, "\n") {
		if strings.Contains(line, "sweep stood aside") {
			fmt.Println("The worker's log:", line)
			return
		}
	}
	fmt.Println("The worker's log says no sweep stood aside for the containment (yet: a sweep logs it when it ends).")
}
