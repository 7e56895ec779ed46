package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/workflows"
)

// envCLIN sets the number of roles of BenchmarkIncidentCLI (make bench-incident-cli);
// envWorkerMemLimit, when set, is the worker process's GOMEMLIMIT (Go's soft memory limit,
// e.g. 100MiB), to see what it does to its memory and its speed.
const (
	envCLIN           = "KEYTURN_BENCH_CLI_N"
	envWorkerMemLimit = "KEYTURN_BENCH_WORKER_GOMEMLIMIT"
	// envCLIContainOnly, when set, ends the benchmark once the scope is contained and every
	// leaked password refused: the incident is terminated before its rotations, which take
	// most of a 10,000-secret run and are not what the containment figures measure.
	envCLIContainOnly = "KEYTURN_BENCH_CLI_CONTAIN_ONLY"
)

// BenchmarkIncidentCLI is BenchmarkIncident as an operator runs it: `keyturn incident
// start` (a process of its own) against the Temporal server, with one `keyturn worker`
// process doing the work; the server runs in the benchmark's process. The secrets are
// seeded the same way (fsync on, two versions that both log in) and the same attackers
// try the leaked passwords. Figures: the CLI's wall time, when every leaked password was
// refused, the incident's own containment and rotation times, and the worker's resident
// memory (VmRSS now, VmHWM the peak, RssAnon the part of VmRSS that is not the binary's
// pages) and CPU time. The binary is the production build (-tags nodev). Reported, never
// asserted; an incident that does not contain and rotate every secret fails the benchmark.
func BenchmarkIncidentCLI(b *testing.B) {
	n := envInt(b, envCLIN, 0)
	if n <= 0 {
		b.Skipf("set %s (make bench-incident-cli [CLI_N=1000]) to run the incident benchmark through the CLI", envCLIN)
	}
	attackers := envInt(b, envAttackers, 4)
	attacked := min(n, envInt(b, envAttacked, 100))
	ctx := context.Background()
	env, ids := testenv.NewBulk(b, testenv.BulkOptions{
		N: n, Prefix: benchPrefix + "c",
		PostgresSettings: map[string]string{"max_connections": "300", "fsync": "on"},
	})
	resolver := env.Resolver(b)
	if err := testenv.SeedVersions(ctx, resolver, ids, 16); err != nil {
		b.Fatalf("seed current versions: %v", err)
	}
	if err := seedInGrace(ctx, resolver, ids, 16); err != nil {
		b.Fatalf("seed second versions: %v", err)
	}
	creds := leakedOf(b, env, pickSample(ids, attacked))
	checkLeaked(ctx, b, env, creds)

	bin := buildKeyturn(b)
	var workerEnv map[string]string
	if limit := os.Getenv(envWorkerMemLimit); limit != "" {
		workerEnv = map[string]string{"GOMEMLIMIT": limit}
	}
	worker := startWorkerProcess(b, bin, env, env.Server.Namespace(), workerEnv)
	cpuBefore := worker.cpu(b)
	id := "bench-cli-" + strconv.Itoa(n)
	cliCtx, cancelCLI := context.WithTimeout(ctx, 30*time.Minute) // a hung CLI fails the benchmark
	defer cancelCLI()
	cmd := exec.CommandContext(cliCtx, bin, "incident", "start", "--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(),
		"-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile,
		"--id", id, "--select", "prefix="+benchPrefix, "--mode", "contain", "--reason", "incident benchmark (CLI)",
		"--operator", "bench", "--yes", "--progress-every", "5s")
	cmd.Env = keyturnEnv(b)

	b.ResetTimer()
	cpu0 := sampleCPU(env.Cluster.Port)
	start := time.Now()
	attackCtx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	att := startAttack(attackCtx, env, creds, attackers, start)
	cli := &cliLines{start: start}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	read := make(chan struct{})
	go func() { cli.read(pr); close(read) }()
	if err := cmd.Start(); err != nil {
		b.Fatalf("keyturn incident start: %v", err)
	}
	if containOnly, _ := strconv.ParseBool(os.Getenv(envCLIContainOnly)); containOnly {
		benchContainOnly(b, cliRun{c: env.Client, id: id, n: n, start: start, worker: worker, att: att, stopAttack: stopAttack,
			attackers: attackers, attacked: attacked, pgPort: env.Cluster.Port, cpu0: cpu0, workerCPU0: cpuBefore, cli: (&cliProcess{cmd: cmd, cancel: cancelCLI, pw: pw, read: read, lines: cli}).watch()})
		return
	}
	err := cmd.Wait()
	wall := time.Since(start)
	_ = pw.Close()
	<-read
	out := cli.String()
	b.StopTimer()
	allRefused := att.wait(30 * time.Second)
	stopAttack()
	<-att.done
	if err != nil {
		b.Fatalf("keyturn incident start: %v\n%s", err, out)
	}
	var rep workflows.IncidentReport
	if err := env.Client.GetWorkflow(ctx, workflows.IncidentWorkflowID(id), "").Get(ctx, &rep); err != nil {
		b.Fatalf("incident report: %v", err)
	}
	if rep.Contained != n || rep.Rotated != n || rep.Failed != 0 {
		b.Fatalf("incident: %d contained, %d rotated, %d failed of %d\n%s", rep.Contained, rep.Rotated, rep.Failed, n, out)
	}
	rss, hwm, anon := worker.memory(b)
	cpu := worker.cpu(b) - cpuBefore

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nN\tCLI wall s\tcontained s\trotated s\tworker VmRSS MiB\tworker VmHWM MiB\tof VmRSS anon MiB\tworker CPU s\t")
	fmt.Fprintf(w, "%d\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", n, wall.Seconds(), float64(rep.AllContainedMs)/1000,
		float64(rep.AllRotatedMs)/1000, float64(rss)/1024, float64(hwm)/1024, float64(anon)/1024, cpu.Seconds())
	_ = w.Flush()
	writeCLIStart(cli, id, rep.StartedAt.Sub(start))
	writeTimeline(b, env.Client, "The incident's containment", workflows.IncidentWorkflowID(id), rep.StartedAt)
	writeBatchPhases(worker.out.String())
	writeAttack(att, len(creds), attacked, attackers, allRefused)
	checkAttack(b, att, allRefused, "the incident ended")
	reportTargets(n, rep, start, att.refusedFrom())
	if n <= 1000 { // the target is for an incident of 1,000 secrets
		fmt.Printf("worker memory target: VmHWM at most 120 MiB during a 1,000-secret incident: %s (%.0f MiB)\n", verdict(float64(hwm)/1024 <= 120), float64(hwm)/1024)
	}
	b.ReportMetric(att.refusedFrom().Seconds(), "refused-s")
	b.ReportMetric(wall.Seconds(), "cli-wall-s")
	b.ReportMetric(float64(hwm)/1024, "worker-hwm-MiB")
	b.ReportMetric(0, "ns/op")
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}
