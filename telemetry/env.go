package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// environment reads the OTEL_* variables that choose exporters. Everything else (the
// endpoint, headers, TLS, timeouts, the sampler, the metric export interval) is read by
// the OpenTelemetry SDK and its OTLP exporters themselves, per the specification.
type environment struct {
	getenv func(string) string
}

// signal is "traces" or "metrics", as the variables spell it.
type signal string

const (
	traces  signal = "traces"
	metrics signal = "metrics"
)

// exporters returns the exporter names for a signal: OTEL_<SIGNAL>_EXPORTER when set,
// else "otlp" when an OTLP endpoint is configured, else none. The specification's
// default is "otlp" always; Keyturn exports nothing unless asked, so a worker without
// a collector does not log connection errors forever. OTEL_SDK_DISABLED=true turns every
// exporter off (a Prometheus endpoint asked for with a flag stays).
func (e environment) exporters(s signal) []string {
	if strings.EqualFold(strings.TrimSpace(e.getenv("OTEL_SDK_DISABLED")), "true") {
		return nil
	}
	if v := strings.TrimSpace(e.getenv("OTEL_" + strings.ToUpper(string(s)) + "_EXPORTER")); v != "" {
		var names []string
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" && name != "none" {
				names = append(names, name)
			}
		}
		return names
	}
	if e.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || e.getenv("OTEL_EXPORTER_OTLP_"+strings.ToUpper(string(s))+"_ENDPOINT") != "" {
		return []string{"otlp"}
	}
	return nil
}

// protocol is the OTLP protocol of a signal: OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the specification's default).
func (e environment) protocol(s signal) (string, error) {
	p := e.getenv("OTEL_EXPORTER_OTLP_" + strings.ToUpper(string(s)) + "_PROTOCOL")
	if p == "" {
		p = e.getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc":
		return "grpc", nil
	default:
		return "", fmt.Errorf("OTLP protocol %q for %s: use grpc or http/protobuf", p, s)
	}
}

func (e environment) spanExporters(ctx context.Context) ([]sdktrace.SpanExporter, error) {
	var out []sdktrace.SpanExporter
	for _, name := range e.exporters(traces) {
		if name != "otlp" {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: Keyturn supports otlp and none", name)
		}
		protocol, err := e.protocol(traces)
		if err != nil {
			return nil, err
		}
		var exp sdktrace.SpanExporter
		if protocol == "grpc" {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		out = append(out, exp)
	}
	return out, nil
}

func (e environment) metricReaders(ctx context.Context) ([]sdkmetric.Reader, error) {
	var out []sdkmetric.Reader
	for _, name := range e.exporters(metrics) {
		switch name {
		case "prometheus":
			// Served on the worker's --metrics-addr, not from here.
			continue
		case "otlp":
		default:
			return nil, fmt.Errorf("OTEL_METRICS_EXPORTER %q: Keyturn supports otlp, prometheus (see --metrics-addr) and none", name)
		}
		protocol, err := e.protocol(metrics)
		if err != nil {
			return nil, err
		}
		var exp sdkmetric.Exporter
		if protocol == "grpc" {
			exp, err = otlpmetricgrpc.New(ctx)
		} else {
			exp, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter: %w", err)
		}
		// The interval comes from OTEL_METRIC_EXPORT_INTERVAL, read by the SDK.
		out = append(out, sdkmetric.NewPeriodicReader(exp))
	}
	return out, nil
}
