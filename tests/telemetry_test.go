package tests

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/telemetry/pgxspans"
)

// TestDevTelemetry runs `keyturn dev` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
// OTLP/HTTP receiver and --metrics-addr on a free port, rotates the demo certificate
// with `keyturn rotate`, then:
//   - scrapes /metrics over HTTP and finds Keyturn's step latency and rotation outcome
//     for kind="localca", and the Temporal SDK's own metrics;
//   - finds one trace that runs from the rotate command's StartWorkflow through the
//     workflow into every activity of the rotation;
//   - rotates the demo PostgreSQL role, demo/app, and finds in its trace the SQL
//     statements and connections as spans under the activities that made them: the
//     password's ALTER ROLE under Create, the new login under Test.
func TestDevTelemetry(t *testing.T) {
	otlp := &otlpReceiver{}
	collector := httptest.NewServer(otlp)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "keyturn-under-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")

	dir := t.TempDir()
	state := filepath.Join(dir, ".keyturn")
	port, codecPort, metricsPort := freePort(t), freePort(t), freePort(t)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(metricsPort)
	dev := startDev(t, "--no-ui", "--home", state, "--temporal-port", strconv.Itoa(port), "--codec-port", strconv.Itoa(codecPort), "--metrics-addr", metricsAddr)
	if !strings.Contains(dev.Out.String(), "Metrics:   http://"+metricsAddr+"/metrics") {
		t.Fatalf("the dev banner does not show the metrics endpoint:\n%s", dev.Out.String())
	}

	// Twice: the second rotation has a previous version to revoke.
	for range 2 {
		var out bytes.Buffer
		code := cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--home", state, "--grace", "0s"}, strings.NewReader(""), &out, &out)
		if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
			t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
		}
	}

	// Metrics, as Prometheus scrapes them.
	families := scrape(t, "http://"+metricsAddr+"/metrics")
	steps := series(families["keyturn_rotation_step_duration_seconds"])
	for _, step := range []string{"plan", "create", "test", "promote", "revoke"} {
		if !steps[`kind="localca",result="ok",step="`+step+`"`] {
			t.Errorf("no keyturn_rotation_step_duration_seconds series for step %s; series: %v", step, steps)
		}
	}
	if r := series(families["keyturn_rotations_total"]); !r[`kind="localca",outcome="rotated",trigger="manual"`] || len(r) != 1 || families["keyturn_rotations_total"].GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Errorf("keyturn_rotations_total series = %v, want one manual rotated localca, counted twice", r)
	}
	for _, name := range []string{"temporal_workflow_completed_total", "temporal_activity_execution_latency_seconds", "temporal_request_total"} {
		if families[name] == nil {
			t.Errorf("the Temporal SDK metric %s is missing from /metrics", name)
		}
	}

	// Traces, as an OpenTelemetry Collector receives them: the second rotation's, which
	// revokes.
	// The worker exports in batches, so the workflow's own span (which ends last) may
	// arrive after its activities': wait for all of them.
	wantSpans := []string{"StartWorkflow:Rotate", "RunWorkflow:Rotate", "RunActivity:Plan", "RunActivity:Create", "RunActivity:Test", "RunActivity:Promote", "RunActivity:Revoke"}
	hasAll := func(trace map[string]bool) bool {
		for _, span := range wantSpans {
			if !trace[span] {
				return false
			}
		}
		return true
	}
	var trace map[string]bool
	deadline := time.Now().Add(20 * time.Second)
	for trace = otlp.traceOf("StartWorkflow:Rotate"); !hasAll(trace) && time.Now().Before(deadline); trace = otlp.traceOf("StartWorkflow:Rotate") {
		time.Sleep(100 * time.Millisecond)
	}
	for _, span := range wantSpans {
		if !trace[span] {
			t.Errorf("the trace of `keyturn rotate` lacks %s; it has %v", span, trace)
		}
	}
	if t.Failed() {
		t.Logf("traces received: %v", otlp.allTraces())
	}
	if !otlp.hasService("keyturn-under-test") {
		t.Error("no span carries OTEL_SERVICE_NAME as its service.name")
	}

	// The demo role, last, so that its trace is the last StartWorkflow:Rotate.
	if !strings.Contains(dev.Out.String(), "rotate demo/app") {
		if testdeps.InCI() {
			t.Fatalf("keyturn dev started without its demo PostgreSQL, so no SQL span can be checked:\n%s", dev.Out.String())
		}
		t.Skip("keyturn dev has no demo PostgreSQL here (no server binaries): the SQL spans are not checked")
	}
	var out bytes.Buffer
	if code := cli.Execute(context.Background(), []string{"rotate", "demo/app", "--wait", "--home", state, "--grace", "0s"}, strings.NewReader(""), &out, &out); code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate demo/app exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}
	want := map[string]string{"ALTER ROLE": "RunActivity:Create", pgxspans.ConnectSpanName: "RunActivity:Test", "SELECT": "RunActivity:Test"}
	var found map[string]bool
	for deadline := time.Now().Add(20 * time.Second); len(found) < len(want) && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		found = sqlUnderActivities(otlp.spansOf("StartWorkflow:Rotate"), want)
	}
	if len(found) < len(want) {
		t.Errorf("the trace of `keyturn rotate demo/app` lacks SQL spans under its activities: want %v, found %v; traces: %v", want, found, otlp.allTraces())
	}
}

// sqlUnderActivities returns which of want's span names (SQL spans, by name) were found
// with db.system.name postgresql directly under the activity span want names.
func sqlUnderActivities(spans []*tracepb.Span, want map[string]string) map[string]bool {
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.GetSpanId())] = s
	}
	found := map[string]bool{}
	for _, s := range spans {
		activity, ok := want[s.GetName()]
		if !ok || !hasAttr(s, "db.system.name", "postgresql") {
			continue
		}
		if parent := byID[hex.EncodeToString(s.GetParentSpanId())]; parent != nil && parent.GetName() == activity {
			found[s.GetName()] = true
		}
	}
	return found
}

func hasAttr(s *tracepb.Span, key, value string) bool {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key && a.GetValue().GetStringValue() == value {
			return true
		}
	}
	return false
}

// otlpReceiver is an OTLP/HTTP collector stand-in: it keeps every trace export request.
type otlpReceiver struct {
	mu     sync.Mutex
	traces []*coltrace.ExportTraceServiceRequest
	bodies [][]byte
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bodies = append(o.bodies, body)
	if r.URL.Path == "/v1/traces" {
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.traces = append(o.traces, &req)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// allTraces lists every trace's span names, for a failure message.
func (o *otlpReceiver) allTraces() map[string][]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]string{}
	for _, req := range o.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					tid := hex.EncodeToString(s.GetTraceId())
					out[tid] = append(out[tid], s.GetName())
				}
			}
		}
	}
	return out
}

// allBodies joins every request body received, for leak scans.
func (o *otlpReceiver) allBodies() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return bytes.Join(o.bodies, []byte("\n"))
}

// traceOf returns the names of every span in the trace of the last span called root.
func (o *otlpReceiver) traceOf(root string) map[string]bool {
	names := map[string]bool{}
	for _, s := range o.spansOf(root) {
		names[s.GetName()] = true
	}
	return names
}

// spansOf returns every span in the trace of the last span called root.
func (o *otlpReceiver) spansOf(root string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var id string
	byTrace := map[string][]*tracepb.Span{}
	for _, req := range o.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					tid := hex.EncodeToString(s.GetTraceId())
					byTrace[tid] = append(byTrace[tid], s)
					if s.GetName() == root {
						id = tid
					}
				}
			}
		}
	}
	return byTrace[id]
}

func (o *otlpReceiver) hasService(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, req := range o.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" && a.GetValue().GetStringValue() == name {
					return true
				}
			}
		}
	}
	return false
}

// scrape fetches a Prometheus endpoint and parses its text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// series lists a family's label sets as `a="x",b="y"`, leaving out the OpenTelemetry
// scope labels every series carries.
func series(f *dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for _, m := range f.GetMetric() {
		out[labelsOf(m)] = true
	}
	return out
}

// labelsOf writes a series' labels as `a="x",b="y"`, the OpenTelemetry scope labels left
// out.
func labelsOf(m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		if !strings.HasPrefix(l.GetName(), "otel_scope_") {
			labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
		}
	}
	return strings.Join(labels, ",")
}

// TestDevMetricsOnByDefault: `keyturn dev` serves /metrics without being asked, and when
// its default port 127.0.0.1:9464 is taken (here by the test), on a free one that its
// banner names.
func TestDevMetricsOnByDefault(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:9464"); err == nil {
		defer l.Close()
	} // else: something else holds it, which is the case under test too
	dir := t.TempDir()
	state := filepath.Join(dir, ".keyturn")
	port, codecPort := freePort(t), freePort(t)
	dev := startDev(t, "--no-demo-postgres", "--no-ui", "--home", state, "--temporal-port", strconv.Itoa(port), "--codec-port", strconv.Itoa(codecPort))
	_, rest, ok := strings.Cut(dev.Out.String(), "Metrics:   ")
	url, _, _ := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || strings.Contains(url, ":9464/") {
		t.Fatalf("the banner does not name a free metrics port:\n%s", dev.Out.String())
	}
	waitFor(t, 10*time.Second, url+" to serve the Temporal SDK's metrics", func() bool {
		return scrape(t, url)["temporal_request_total"] != nil
	})
}

// TestWorkerMetrics: `keyturn worker` with KEYTURN_METRICS_ADDR serves /metrics, and a
// rotation that fails and rolls back shows there by its outcome, beside one that worked,
// without opening the Temporal UI.
func TestWorkerMetrics(t *testing.T) {
	env := brokenEnv(t)
	addr := startMetricsWorker(t, env)

	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate e2e/app exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "rotate", "e2e/broken", "--wait"); code == 0 || !strings.Contains(out, "rolled_back") {
		t.Fatalf("rotate e2e/broken should roll back; exited %d:\n%s", code, out)
	}
	families := scrape(t, "http://"+addr+"/metrics")
	got := series(families["keyturn_rotations_total"])
	for _, want := range []string{`kind="postgres",outcome="rotated",trigger="manual"`, `kind="postgres",outcome="rolled_back",trigger="manual"`} {
		if !got[want] {
			t.Errorf("keyturn_rotations_total lacks {%s}; series: %v", want, got)
		}
	}
	if steps := series(families["keyturn_rotation_step_duration_seconds"]); !steps[`kind="postgres",result="error",step="test"`] {
		t.Errorf("the failed Test step is not measured; series: %v", steps)
	}
}

// brokenEnv starts an environment without a worker and with two Postgres secrets:
// e2e/app rotates; e2e/broken's check query needs a table its role cannot read, so its
// Test step fails and a rotation of it rolls back.
func brokenEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.New(t, testenv.Options{NoWorker: true, Secrets: []demo.Secret{
		{ID: "e2e/app", Strategy: "alternating", Grace: "0s"},
		{ID: "e2e/broken", Strategy: "alternating", Grace: "0s", CheckQuery: "SELECT count(*) FROM vault_only", Target: demo.Target{Role: "broken"}},
	}})
	superExec(t, env, "CREATE TABLE vault_only (x int)")
	return env
}

// startMetricsWorker runs `keyturn worker` (startWorker: as a user would, through the
// CLI) on env with KEYTURN_METRICS_ADDR on a free port, until the test ends; it returns
// that address once /metrics answers.
func startMetricsWorker(t *testing.T, env *testenv.Env) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	t.Setenv("KEYTURN_METRICS_ADDR", addr)
	startWorker(t, env)
	waitFor(t, 30*time.Second, "the worker to serve /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil
	})
	return addr
}
