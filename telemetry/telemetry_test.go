package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestNoEnvironmentMeansNoTracing(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	tel, err := Setup(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if tel.Tracing() {
		t.Fatal("tracing is on with no OTEL_* variable set")
	}
	if i, err := tel.Interceptors(); err != nil || len(i) != 0 {
		t.Fatalf("interceptors with tracing off: %v %v", i, err)
	}
}

func TestExportersFromEnvironment(t *testing.T) {
	cases := map[string]struct {
		env     map[string]string
		traces  []string
		proto   string
		protoOK bool
	}{
		"nothing set":              {env: nil, traces: nil, proto: "http/protobuf", protoOK: true},
		"endpoint alone":           {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, traces: []string{"otlp"}, proto: "http/protobuf", protoOK: true},
		"traces endpoint":          {env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, traces: []string{"otlp"}, proto: "http/protobuf", protoOK: true},
		"exporter none":            {env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, traces: nil, proto: "http/protobuf", protoOK: true},
		"grpc":                     {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, traces: []string{"otlp"}, proto: "grpc", protoOK: true},
		"per-signal protocol wins": {env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, proto: "http/protobuf", protoOK: true},
		"json refused":             {env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, protoOK: false},
		"sdk disabled":             {env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, traces: nil, proto: "http/protobuf", protoOK: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := environment{getenv: func(k string) string { return c.env[k] }}
			if got := e.exporters(traces); strings.Join(got, ",") != strings.Join(c.traces, ",") {
				t.Errorf("exporters = %v, want %v", got, c.traces)
			}
			p, err := e.protocol(traces)
			if (err == nil) != c.protoOK || (c.protoOK && p != c.proto) {
				t.Errorf("protocol = %q, %v; want %q (ok %v)", p, err, c.proto, c.protoOK)
			}
		})
	}
	e := environment{getenv: func(k string) string { return map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}[k] }}
	if _, err := e.spanExporters(context.Background()); err == nil {
		t.Error("an unsupported trace exporter is accepted")
	}
}

// TestShutdownIsBounded: a collector that accepts the connection and never answers does
// not hold up Shutdown past its timeout, and the failed flush is reported.
func TestShutdownIsBounded(t *testing.T) {
	stuck := make(chan struct{})
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stuck }))
	defer collector.Close()
	defer close(stuck)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	tel, err := Setup(context.Background(), Options{ShutdownTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Tracing() {
		t.Fatal("an OTLP endpoint did not turn tracing on")
	}
	_, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "work")
	span.End()
	started := time.Now()
	err = tel.Shutdown(context.Background())
	if took := time.Since(started); took > 2*time.Second {
		t.Fatalf("Shutdown took %s with a 300ms timeout", took)
	}
	if err == nil {
		t.Fatal("a flush that never reached the collector is not reported")
	}
}

// TestPrometheusScrape records a step through the instruments and finds it, under its
// Prometheus name and labels, in what the /metrics endpoint serves.
func TestPrometheusScrape(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	reg := prometheus.NewRegistry()
	tel, err := Setup(context.Background(), Options{Registry: reg, SpanExporter: spans})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if !tel.Tracing() {
		t.Fatal("tracing is off with a span exporter given")
	}
	tel.Instruments().StepDone(context.Background(), "localca", "create", 30*time.Millisecond, nil)
	tel.Instruments().StepDone(context.Background(), "localca", "test", time.Second, errors.New("refused"))
	tel.Instruments().RotationDone(context.Background(), "localca", "manual", "rotated")

	// As gathered, before any escaping for the scraper: a Prometheus that accepts UTF-8
	// names sees these.
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range gathered {
		if strings.Contains(f.GetName(), ".") {
			t.Errorf("metric %q has a dot in its name", f.GetName())
		}
	}

	srv, err := tel.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	steps := families["keyturn_rotation_step_duration_seconds"]
	if steps == nil {
		t.Fatalf("no keyturn_rotation_step_duration_seconds in the scrape; families: %v", keys(families))
	}
	var seen []string
	for _, m := range steps.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		seen = append(seen, labels["kind"]+"/"+labels["step"]+"/"+labels["result"])
	}
	slices.Sort(seen)
	if strings.Join(seen, ",") != "localca/create/ok,localca/test/error" {
		t.Errorf("step series = %v", seen)
	}
	rot := families["keyturn_rotations_total"]
	if rot == nil || len(rot.GetMetric()) != 1 || rot.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("keyturn_rotations_total = %v", rot)
	}
}

// TestTemporalMetricsErrorDoesNotPanic: an instrument the meter refuses is logged, where
// the contrib's default handler panics (and would take a worker down).
func TestTemporalMetricsErrorDoesNotPanic(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if _, err := tel.MeterProvider().Meter("check").Int64Counter("not a valid instrument name!"); err == nil {
		t.Fatal("the meter accepts the name: the test would not reach the error callback")
	}
	var logs bytes.Buffer
	h := tel.TemporalMetrics(slog.New(slog.NewTextHandler(&logs, nil)))
	h.Counter("not a valid instrument name!").Inc(1)
	if !strings.Contains(logs.String(), "Temporal SDK metric") {
		t.Fatalf("the refused instrument was not logged: %q", logs.String())
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
