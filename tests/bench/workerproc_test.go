package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/telemetry"
)

// workerRotations is how many timed rotations each worker process runs before its memory
// is read, after three to warm up.
const workerRotations = 20

// workerStats is what one `keyturn worker` process cost.
type workerStats struct {
	latencies []time.Duration
	// cpu is the process's user and system time over the timed rotations.
	cpu time.Duration
	// rssKiB and hwmKiB are VmRSS (resident now) and VmHWM (the peak) after them.
	rssKiB, hwmKiB int64
}

// workerPair is the worker with telemetry off beside the one with it on.
type workerPair struct {
	off, on   workerStats
	rotations int
	received  received
	scrapes   int
}

// measureWorkers runs the real binary, `keyturn worker`, twice at once against the env's
// server: one with no OTEL_* variable and no metrics address (telemetry off), one with
// OTLP to the collector at collectorURL and /metrics served and scraped (telemetry on),
// each in its own namespace. Both rotate their own secret, interleaved, and are then read
// from /proc: VmRSS and VmHWM, and CPU time per rotation. Separate processes are the fair
// way to compare memory: in the benchmark's own process the Temporal server, the
// PostgreSQL client and the test harness share one heap. The in-process workers must be
// stopped first: they poll the same namespaces.
func measureWorkers(b *testing.B, env *testenv.Env, collectorURL string, col *collector) workerPair {
	b.Helper()
	bin := buildKeyturn(b)
	offProc := startWorkerProcess(b, bin, env, env.Server.Namespace(), nil)
	onEnv := otelEnv(collectorURL, workerService)
	onEnv["KEYTURN_METRICS_ADDR"] = "127.0.0.1:0"
	onProc := startWorkerProcess(b, bin, env, onNamespace, onEnv)
	scrapes := &scraper{url: onProc.metricsURL(b)}

	offClient := env.Client
	onClient := env.DialWith(b, onNamespace, telemetry.Disabled())
	for range 3 {
		rotateOnce(b, offClient, offSecret)
		rotateOnce(b, onClient, onSecret)
	}
	offCPU, onCPU := offProc.cpu(b), onProc.cpu(b)
	var pair workerPair
	for i := range workerRotations {
		off := func() {
			d, _ := rotateOnce(b, offClient, offSecret)
			pair.off.latencies = append(pair.off.latencies, d)
		}
		on := func() {
			if (i+1)%scrapeEvery == 0 {
				defer scrapes.during()()
			}
			d, _ := rotateOnce(b, onClient, onSecret)
			pair.on.latencies = append(pair.on.latencies, d)
		}
		if i%2 == 0 {
			off()
			on()
		} else {
			on()
			off()
		}
	}
	pair.off.cpu, pair.on.cpu = offProc.cpu(b)-offCPU, onProc.cpu(b)-onCPU
	pair.off.rssKiB, pair.off.hwmKiB, _ = offProc.memory(b)
	pair.on.rssKiB, pair.on.hwmKiB, _ = onProc.memory(b)
	if err := scrapes.check(); err != nil {
		b.Fatal(err)
	}

	// Stopped with SIGTERM, the worker flushes its telemetry before it exits.
	offProc.stop(b)
	onProc.stop(b)
	pair.received = col.of(workerService)
	if pair.received.spans == 0 || pair.received.metricRequests == 0 {
		b.Fatalf("the worker process with telemetry on exported %d spans and %d metric requests", pair.received.spans, pair.received.metricRequests)
	}
	pair.rotations, pair.scrapes = workerRotations, scrapes.count()
	return pair
}

// write prints the processes' figures.
func (p workerPair) write(w io.Writer) {
	fmt.Fprintf(w, "\nWorker processes (`keyturn worker`, side by side, each in its own namespace), after %d+3 rotations each:\n", p.rotations)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tVmRSS MiB\tVmHWM MiB\tCPU ms/rotation\tp50 ms\tp95 ms\t")
	row := func(name string, s workerStats) {
		sum := summarize(s.latencies)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, float64(s.rssKiB)/1024, float64(s.hwmKiB)/1024,
			ms(s.cpu)/float64(len(s.latencies)), ms(sum.p50), ms(sum.p95))
	}
	row("telemetry off", p.off)
	row("telemetry on", p.on)
	_ = tw.Flush()
	fmt.Fprintf(w, "the worker with telemetry on exported %d spans and %d metric requests to the collector; its /metrics was scraped %d times\n",
		p.received.spans, p.received.metricRequests, p.scrapes)
	fmt.Fprintln(w, "CPU: the process's user+system time (/proc/PID/stat, 10 ms ticks) over the timed rotations, divided by them; with telemetry on it includes")
	fmt.Fprintf(w, "the OTLP exports (metrics every %s ms) and the scrapes in that time. VmRSS: resident after them; VmHWM: the peak since start (/proc/PID/status)\n", exportInterval)
}

// buildKeyturn builds the keyturn binary into a temporary directory as production
// builds it (-tags nodev, deploy/Dockerfile): the worker's memory is that of the binary
// operators deploy. The build cache makes it a link step when the benchmark's packages
// are built.
func buildKeyturn(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "keyturn")
	start := time.Now()
	out, err := exec.Command("go", "build", "-buildvcs=false", "-tags", "nodev", "-o", bin, "github.com/keyturn/keyturn/cmd/keyturn").CombinedOutput()
	if err != nil {
		b.Fatalf("go build -tags nodev ./cmd/keyturn: %v\n%s", err, out)
	}
	b.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// workerProcess is a running `keyturn worker`.
type workerProcess struct {
	cmd *exec.Cmd
	out *testenv.SyncBuffer
	// done is closed when the process has exited; waitErr is then how.
	done    chan struct{}
	waitErr error
}

// keyturnEnv is the environment a keyturn process of the benchmarks gets: this process's
// less every OTEL_*, TEMPORAL_* and KEYTURN_* variable, with a KEYTURN_HOME of its own.
func keyturnEnv(b *testing.B) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "KEYTURN_") {
			env = append(env, kv)
		}
	}
	return append(env, "KEYTURN_HOME="+b.TempDir())
}

// startWorkerProcess starts `keyturn worker` on the env's inventory, store and codec key
// in namespace, with the environment of this process less every OTEL_*, TEMPORAL_* and
// KEYTURN_* variable, plus extra; it returns once the worker logs that it started.
func startWorkerProcess(b *testing.B, bin string, env *testenv.Env, namespace string, extra map[string]string) *workerProcess {
	b.Helper()
	cmd := exec.Command(bin, "worker", "--address", env.Server.FrontendAddr(), "--namespace", namespace,
		"-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile)
	cmd.Env = keyturnEnv(b)
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &workerProcess{cmd: cmd, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start keyturn worker: %v", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	b.Cleanup(func() { p.stop(b) })
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(p.out.String(), "worker started") {
		select {
		case <-p.done:
			b.Fatalf("keyturn worker exited before it started (%v):\n%s", p.waitErr, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("keyturn worker did not start within 2 minutes:\n%s", p.out.String())
		}
	}
	return p
}

var metricsURLLog = regexp.MustCompile(`msg="serving Prometheus metrics" url=(http://\S+/metrics)`)

// metricsURL is the /metrics URL the worker logged (it was given port 0).
func (p *workerProcess) metricsURL(b *testing.B) string {
	b.Helper()
	m := metricsURLLog.FindStringSubmatch(p.out.String())
	if m == nil {
		b.Fatalf("keyturn worker did not log its metrics URL:\n%s", p.out.String())
	}
	return m[1]
}

// cpu is the process's user and system time so far.
func (p *workerProcess) cpu(b *testing.B) time.Duration {
	b.Helper()
	_, _, utime, stime, _, _, ok := procStat(fmt.Sprintf("/proc/%d", p.cmd.Process.Pid))
	if !ok {
		b.Fatalf("read /proc/%d/stat", p.cmd.Process.Pid)
	}
	return utime + stime
}

// memory reads VmRSS, VmHWM and RssAnon from /proc/PID/status, in KiB. RssAnon is the
// part of VmRSS that is the process's own memory (heap, stacks), not pages of the binary.
func (p *workerProcess) memory(b *testing.B) (rss, hwm, anon int64) {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM" && name != "RssAnon") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/status %s: %q", p.cmd.Process.Pid, name, value)
		}
		switch name {
		case "VmRSS":
			rss = kib
		case "VmHWM":
			hwm = kib
		default:
			anon = kib
		}
	}
	if rss == 0 || hwm == 0 || anon == 0 {
		b.Fatalf("/proc/%d/status has no VmRSS, VmHWM or RssAnon", p.cmd.Process.Pid)
	}
	return rss, hwm, anon
}

// stop sends SIGTERM, as an orchestrator does, and waits for the worker to exit; one that
// does not within 30 s is killed and the benchmark fails. Stopping twice is harmless.
func (p *workerProcess) stop(b *testing.B) {
	b.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			b.Errorf("keyturn worker exited with %v:\n%s", p.waitErr, p.out.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		b.Errorf("keyturn worker did not stop within 30 s of SIGTERM:\n%s", p.out.String())
	}
}
