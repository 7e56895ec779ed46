// Package telemetry owns Keyturn's OpenTelemetry setup and its own instruments. Setup
// reads the standard OTEL_* environment variables, so an operator points Keyturn at an
// OpenTelemetry Collector the way they point everything else; with none of them set,
// tracing is a no-op and nothing is exported. Metrics can also be served to Prometheus
// from a registry (the worker's /metrics). The Temporal SDK is wired to the same
// providers through its OpenTelemetry contrib (Interceptors, TemporalMetrics).
//
// No instrument takes material or a version token as a label. The rotation, step and
// incident metrics are labelled by small fixed sets (kind, step, result, outcome,
// trigger, state); the sweep's gauges (secrets.go) name a secret by its ID and owner and
// an incident by its ID, references an alert must give to say which one.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName names the service when OTEL_SERVICE_NAME does not.
const DefaultServiceName = "keyturn"

// ShutdownTimeout bounds the final flush by default: a collector that is down must not
// hold up a worker's exit or a `keyturn rotate` that has finished.
const ShutdownTimeout = 5 * time.Second

// instrumentationName is the scope of Keyturn's own tracer and meter.
const instrumentationName = "github.com/keyturn/keyturn"

// Options adjust Setup. The zero value reads the environment only.
type Options struct {
	// ServiceName is the default service.name; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it. Default DefaultServiceName.
	ServiceName string
	// Registry, when set, receives every metric for a Prometheus scrape (Handler).
	Registry *prometheus.Registry
	// SpanExporter, when set, receives every span, in addition to what OTEL_* asks for,
	// synchronously: tests pass tracetest's in-memory exporter to see every span.
	SpanExporter sdktrace.SpanExporter
	// Logger reports export errors; default slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds Shutdown; default ShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Telemetry holds the providers Setup built. Its zero value is not usable; Disabled
// returns one that records nothing.
type Telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	tracing        bool
	registry       *prometheus.Registry
	instruments    *Instruments
	logger         *slog.Logger
	shutdown       []func(context.Context) error
	flushTimeout   time.Duration
}

// Disabled returns telemetry that traces and measures nothing.
func Disabled() *Telemetry {
	mp := metricnoop.NewMeterProvider()
	return &Telemetry{
		tracerProvider: tracenoop.NewTracerProvider(),
		meterProvider:  mp,
		instruments:    mustInstruments(mp.Meter(instrumentationName)),
		logger:         slog.Default(),
		flushTimeout:   ShutdownTimeout,
	}
}

// Setup builds the tracer and meter providers from the OTEL_* variables and opts. Call
// Shutdown when done, so buffered spans and metrics are flushed.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ServiceName == "" {
		opts.ServiceName = DefaultServiceName
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = ShutdownTimeout
	}
	env := environment{getenv: os.Getenv}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", opts.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
	fromEnv, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("telemetry resource from OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	if res, err = resource.Merge(res, fromEnv); err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	t := &Telemetry{registry: opts.Registry, logger: opts.Logger, flushTimeout: opts.ShutdownTimeout}
	// Tracing.
	spanExporters, err := env.spanExporters(ctx)
	if err != nil {
		return nil, err
	}
	if len(spanExporters) > 0 || opts.SpanExporter != nil {
		tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		for _, e := range spanExporters {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(e))
		}
		if opts.SpanExporter != nil {
			tpOpts = append(tpOpts, sdktrace.WithSyncer(opts.SpanExporter))
		}
		// The sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read
		// by the SDK itself when no sampler is given here.
		tp := sdktrace.NewTracerProvider(tpOpts...)
		t.tracerProvider, t.tracing = tp, true
		t.shutdown = append(t.shutdown, tp.Shutdown)
	} else {
		t.tracerProvider = tracenoop.NewTracerProvider()
	}

	// Metrics.
	readers, err := env.metricReaders(ctx)
	if err != nil {
		return nil, errors.Join(err, t.Shutdown(ctx))
	}
	if opts.Registry != nil {
		r, err := prometheusReader(opts.Registry)
		if err != nil {
			return nil, errors.Join(err, t.Shutdown(ctx))
		}
		readers = append(readers, r)
	}
	if len(readers) > 0 {
		mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		for _, r := range readers {
			mpOpts = append(mpOpts, sdkmetric.WithReader(r))
		}
		mp := sdkmetric.NewMeterProvider(mpOpts...)
		t.meterProvider = mp
		t.shutdown = append(t.shutdown, mp.Shutdown)
	} else {
		t.meterProvider = metricnoop.NewMeterProvider()
	}
	if t.instruments, err = newInstruments(t.meterProvider.Meter(instrumentationName)); err != nil {
		return nil, errors.Join(err, t.Shutdown(ctx))
	}
	return t, nil
}

// Tracing reports whether spans go anywhere; when not, Interceptors returns none.
func (t *Telemetry) Tracing() bool { return t.tracing }

// TracerProvider is the provider spans are made with (a no-op one when tracing is off).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// MeterProvider is the provider metrics are made with (a no-op one when nothing reads them).
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// Instruments are Keyturn's own metrics on this telemetry's meter.
func (t *Telemetry) Instruments() *Instruments { return t.instruments }

// Shutdown flushes and stops the providers, giving up after Options.ShutdownTimeout.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.flushTimeout)
	defer cancel()
	var errs []error
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		if err := t.shutdown[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.shutdown = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush telemetry: %w", err)
	}
	return nil
}
