package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
)

const (
	// onNamespace holds the worker with telemetry on; the one with telemetry off runs in
	// the server's own namespace. Both poll Keyturn's task queue and never share a task.
	onNamespace = "bench-telemetry-on"
	// Each side rotates a secret of its own, on a group role of its own, alike in all else.
	offSecret = secret.ID("bench/off")
	onSecret  = secret.ID("bench/on")
	// The service.name the in-process worker and the worker process export under.
	benchService  = "keyturn-bench"
	workerService = "keyturn-bench-worker"
	// scrapeEvery: every scrapeEvery-th rotation with telemetry on, /metrics is scraped
	// while it runs (about every 5 s, three times Prometheus' default rate).
	scrapeEvery = 4
	// exportInterval is OTEL_METRIC_EXPORT_INTERVAL in ms: 5 s instead of the default
	// 60 s, so metrics are exported many times in a run.
	exportInterval = "5000"
	// overheadTarget is issue 11's budget: a rotation with telemetry on at most 3% slower.
	overheadTarget = 1.03
)

// BenchmarkTelemetryOverhead measures what telemetry costs a real Postgres rotation, in one
// run: two in-process workers on one embedded Temporal server, one with telemetry off (as
// `keyturn worker` runs with no OTEL_* variables) and one with everything on (the tracing
// interceptor on its client and worker, spans and metrics exported over OTLP/HTTP through
// the batching exporters Setup builds from OTEL_* to a collector stand-in, the Temporal
// SDK's metrics and Keyturn's instruments, /metrics scraped during the run). Each
// iteration runs the bare 4-activity workflow (the engine's floor), then one rotation on
// each side, the order swapped every iteration, so drift on a loaded machine hits both
// sides alike. It then runs `keyturn worker` twice as processes, with and without
// telemetry, side by side, for their memory and CPU (see measureWorkers).
//
// Figures are reported, never asserted; what is asserted is that "on" is really on: the
// collector received spans and metrics, and /metrics served Keyturn's series.
func BenchmarkTelemetryOverhead(b *testing.B) {
	ctx := context.Background()
	env := testenv.New(b, testenv.Options{
		NoWorker:        true,
		ExtraNamespaces: []string{onNamespace},
		Secrets: []demo.Secret{
			{ID: offSecret, Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "bench_off"}},
			{ID: onSecret, Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "bench_on"}},
		},
	})
	col := newCollector()
	colSrv := httptest.NewServer(col)
	b.Cleanup(colSrv.Close)

	// Telemetry on, set up from OTEL_* as the CLI does, plus the worker's /metrics registry.
	for k, v := range otelEnv(colSrv.URL, benchService) {
		b.Setenv(k, v)
	}
	on, err := telemetry.Setup(ctx, telemetry.Options{Registry: prometheus.NewRegistry(), Logger: env.Logger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = on.Shutdown(ctx) })
	if !on.Tracing() {
		b.Fatal("telemetry from OTEL_EXPORTER_OTLP_ENDPOINT does not trace")
	}
	metricsSrv, err := on.ServeMetrics("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = metricsSrv.Close() })
	scrapes := &scraper{url: "http://" + metricsSrv.Addr + "/metrics"}
	// Telemetry off: what Setup builds with no OTEL_* variable and no metrics address.
	off := telemetry.Disabled()

	offClient := env.DialWith(b, env.Server.Namespace(), off)
	onClient := env.DialWith(b, onNamespace, on)
	offWorker := env.StartWorkerOn(b, offClient, off)
	onWorker := env.StartWorkerOn(b, onClient, on)
	startNoopWorker(b, env.Client)

	rotateOff := func() time.Duration {
		d, _ := rotateOnce(b, offClient, offSecret)
		return d
	}
	onRotations := 0
	rotateOn := func() time.Duration {
		onRotations++
		if onRotations%scrapeEvery == 0 {
			defer scrapes.during()()
		}
		d, _ := rotateOnce(b, onClient, onSecret)
		return d
	}
	for range 3 { // warm up connections, caches and the task queues
		runNoop(b, env.Client, noopWorkflow)
		rotateOff()
		rotateOn()
	}

	var noops, offs, ons []time.Duration
	iteration := 0
	b.ResetTimer()
	for b.Loop() {
		noops = append(noops, runNoop(b, env.Client, noopWorkflow))
		if iteration%2 == 0 {
			offs = append(offs, rotateOff())
			ons = append(ons, rotateOn())
		} else {
			ons = append(ons, rotateOn())
			offs = append(offs, rotateOff())
		}
		iteration++
	}
	b.StopTimer()

	// "On" was really on: everything the worker traced and measured reached the collector
	// (Shutdown flushes what the batching processor still holds), and /metrics served
	// Keyturn's series while the rotations ran.
	offWorker.Stop()
	onWorker.Stop()
	if err := on.Shutdown(ctx); err != nil {
		b.Fatal(err) // "flush telemetry: ..."
	}
	got := col.of(benchService)
	if got.spans < onRotations || got.metricRequests == 0 {
		b.Fatalf("the collector received %d spans for %d rotations and %d metric exports", got.spans, onRotations, got.metricRequests)
	}
	if err := scrapes.check(); err != nil {
		b.Fatal(err)
	}

	procs := measureWorkers(b, env, colSrv.URL, col)
	if n := col.refusals(); n > 0 {
		b.Fatalf("the collector refused %d requests that were not OTLP exports", n)
	}

	offSum, onSum, floor := summarize(offs), summarize(ons), summarize(noops)
	lo, hi := bootstrap(offs, ons)
	writeOverhead(os.Stdout, offs, ons, floor, got, onRotations, scrapes.count())
	procs.write(os.Stdout)

	b.ReportMetric(ms(floor.p50), "noop-p50-ms")
	b.ReportMetric(ms(offSum.p50), "off-p50-ms")
	b.ReportMetric(ms(offSum.p95), "off-p95-ms")
	b.ReportMetric(ms(offSum.mean), "off-mean-ms")
	b.ReportMetric(ms(onSum.p50), "on-p50-ms")
	b.ReportMetric(ms(onSum.p95), "on-p95-ms")
	b.ReportMetric(ms(onSum.mean), "on-mean-ms")
	b.ReportMetric(ratio(onSum.p50, offSum.p50), "on/off-p50")
	b.ReportMetric(lo, "on/off-p50-lo90")
	b.ReportMetric(hi, "on/off-p50-hi90")
	b.ReportMetric(paired(offs, ons), "on/off-paired-median")
	b.ReportMetric(ratio(onSum.p95, offSum.p95), "on/off-p95")
	b.ReportMetric(ratio(onSum.mean, offSum.mean), "on/off-mean")
	b.ReportMetric(float64(got.spans)/float64(onRotations), "spans/rotation")
	b.ReportMetric(float64(procs.off.rssKiB)/1024, "worker-off-rss-MiB")
	b.ReportMetric(float64(procs.on.rssKiB)/1024, "worker-on-rss-MiB")
	b.ReportMetric(0, "ns/op") // the per-op time mixes three workflows; the metrics above are the figures
}

// otelEnv is the environment that turns telemetry on, as an operator sets it: OTLP over
// HTTP to the collector at url for traces and metrics, every trace sampled. Every other
// OTEL_* variable that changes what is exported is set to its default, so the shell
// running the benchmark cannot change what "on" means.
func otelEnv(url, service string) map[string]string {
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":         url,
		"OTEL_EXPORTER_OTLP_PROTOCOL":         "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":  "",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":  "",
		"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "",
		"OTEL_TRACES_EXPORTER":                "otlp",
		"OTEL_METRICS_EXPORTER":               "otlp",
		"OTEL_SDK_DISABLED":                   "false",
		"OTEL_TRACES_SAMPLER":                 "parentbased_always_on",
		"OTEL_TRACES_SAMPLER_ARG":             "",
		"OTEL_METRIC_EXPORT_INTERVAL":         exportInterval,
		"OTEL_SERVICE_NAME":                   service,
		"OTEL_RESOURCE_ATTRIBUTES":            "",
		"OTEL_BSP_SCHEDULE_DELAY":             "",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE":      "",
	}
}

// scraper scrapes /metrics as Prometheus would, concurrently with a rotation.
type scraper struct {
	url string

	wg   sync.WaitGroup
	mu   sync.Mutex
	n    int
	last string
	err  error
}

// during starts one scrape and returns a function that waits for it.
func (s *scraper) during() (wait func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		body, err := get(s.url)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.err = err
			return
		}
		s.n++
		s.last = body
	}()
	return s.wg.Wait
}

// check fails unless every scrape worked, there was one, and the last one served
// Keyturn's rotations and the Temporal SDK's metrics.
func (s *scraper) check() error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return s.err
	case s.n == 0:
		return fmt.Errorf("%s was never scraped: too few iterations (use -benchtime %dx or more)", s.url, scrapeEvery)
	}
	for _, name := range []string{"keyturn_rotations_total", "keyturn_rotation_step_duration_seconds", "temporal_workflow_completed_total"} {
		if !strings.Contains(s.last, name) {
			return fmt.Errorf("%s does not serve %s", s.url, name)
		}
	}
	return nil
}

func (s *scraper) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// get fetches a URL's body; anything but 200 is an error.
func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	return string(body), nil
}

// summary is a latency distribution's median, 95th percentile and mean.
type summary struct{ p50, p95, mean time.Duration }

func summarize(ds []time.Duration) summary {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return summary{p50: percentile(ds, 50), p95: percentile(ds, 95), mean: sum / time.Duration(max(1, len(ds)))}
}

// paired is the median of on/off over the iterations: each iteration's two rotations ran
// one right after the other, so a slow stretch of the machine mostly cancels out.
func paired(offs, ons []time.Duration) float64 {
	rs := make([]float64, len(offs))
	for i := range offs {
		rs[i] = ratio(ons[i], offs[i])
	}
	return percentile(rs, 50)
}

// bootstrap is a 90% interval of the p50 ratio on/off: the iterations (pairs) resampled
// with replacement, 2,000 times, from a fixed seed so a run's output can be reproduced
// from its figures. It says whether a run resolves a 3% difference at all.
func bootstrap(offs, ons []time.Duration) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(11, 5))
	rs := make([]float64, 2000)
	off, on := make([]time.Duration, len(offs)), make([]time.Duration, len(ons))
	for k := range rs {
		for i := range offs {
			j := rng.IntN(len(offs))
			off[i], on[i] = offs[j], ons[j]
		}
		rs[k] = ratio(percentile(on, 50), percentile(off, 50))
	}
	return percentile(rs, 5), percentile(rs, 95)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// writeOverhead prints the latency table, the target's verdict and what the collector
// received.
func writeOverhead(w io.Writer, offs, ons []time.Duration, floor summary, got received, onRotations, scrapes int) {
	off, on := summarize(offs), summarize(ons)
	fmt.Fprintf(w, "\nTelemetry overhead: %d rotations a side, interleaved, in one process (embedded Temporal, real PostgreSQL):\n", len(offs))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tp50 ms\tp95 ms\tmean ms\t")
	row := func(name string, s summary) {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t\n", name, ms(s.p50), ms(s.p95), ms(s.mean))
	}
	row("bare 4-activity workflow (floor)", floor)
	row("rotation, telemetry off", off)
	row("rotation, telemetry on", on)
	fmt.Fprintf(tw, "on/off\t%.3f\t%.3f\t%.3f\t\n", ratio(on.p50, off.p50), ratio(on.p95, off.p95), ratio(on.mean, off.mean))
	_ = tw.Flush()
	r := ratio(on.p50, off.p50)
	verdict := "met"
	if r > overheadTarget {
		verdict = "MISSED"
	}
	lo, hi := bootstrap(offs, ons)
	fmt.Fprintf(w, "target: p50 with telemetry on at most %.0f%% above off: %s (%+.1f%%; 90%% bootstrap interval of on/off p50: %.3f to %.3f)\n",
		(overheadTarget-1)*100, verdict, (r-1)*100, lo, hi)
	fmt.Fprintf(w, "median of the %d paired ratios (on/off, same iteration): %.3f\n", len(offs), paired(offs, ons))
	fmt.Fprintf(w, "exported over OTLP/HTTP: %d spans (%.1f per rotation, %d requests), %d metric exports (%d metrics), %.0f KiB; /metrics scraped %d times\n",
		got.spans, float64(got.spans)/float64(onRotations), got.traceRequests, got.metricRequests, got.metrics, float64(got.bytes)/1024, scrapes)
}
