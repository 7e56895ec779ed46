package telemetry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// prometheusReader exports every metric of the meter provider into reg, under the names
// the OpenTelemetry Prometheus exporter derives (dots to underscores, a unit suffix such
// as _seconds, _total on counters).
func prometheusReader(reg *prometheus.Registry) (sdkmetric.Reader, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	return exp, nil
}

// Handler serves the metrics of Setup's Registry in the Prometheus text format; nil when
// Setup was given no registry.
func (t *Telemetry) Handler() http.Handler {
	if t.registry == nil {
		return nil
	}
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{t}})
}

// MetricsServer serves /metrics for a Prometheus scrape.
type MetricsServer struct {
	srv *http.Server
	// Addr is the address it listens on (the port chosen, if addr asked for port 0).
	Addr string
}

// ServeMetrics listens on addr and serves Handler at /metrics until Close.
func (t *Telemetry) ServeMetrics(addr string) (*MetricsServer, error) {
	h := t.Handler()
	if h == nil {
		return nil, errors.New("serve metrics: telemetry was set up without a registry")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint on %s: %w (use --metrics-addr)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &MetricsServer{srv: srv, Addr: l.Addr().String()}, nil
}

// Close stops serving.
func (m *MetricsServer) Close() error { return m.srv.Close() }

// slogPrinter lets promhttp report a failed scrape through the telemetry's logger.
type slogPrinter struct{ t *Telemetry }

func (p slogPrinter) Println(v ...any) { p.t.logger.Warn("metrics scrape", "error", fmt.Sprint(v...)) }
