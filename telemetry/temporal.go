package telemetry

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Interceptors returns the Temporal tracing interceptor for a client's options, or none
// when tracing is off. A worker built from that client inherits it, so one trace runs
// from the client that starts a workflow through the workflow into every activity: do
// not add it to the worker's options as well, or every span is made twice.
func (t *Telemetry) Interceptors() ([]interceptor.ClientInterceptor, error) {
	if !t.tracing {
		return nil, nil
	}
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: t.tracerProvider.Tracer(instrumentationName),
	})
	if err != nil {
		return nil, err
	}
	return []interceptor.ClientInterceptor{i}, nil
}

// TemporalMetrics is the Temporal SDK's metrics handler over this telemetry's meter. A
// meter error is logged: the contrib's default panics, and would take a worker down.
func (t *Telemetry) TemporalMetrics(logger *slog.Logger) client.MetricsHandler {
	if logger == nil {
		logger = t.logger
	}
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: t.meterProvider.Meter("temporal-sdk-go"),
		OnError: func(err error) {
			logger.Warn("Temporal SDK metric", "error", err)
		},
		// Counters as Prometheus counters (temporal_..._total), not gauges.
		UseMonotonicCounters: true,
	})
}
