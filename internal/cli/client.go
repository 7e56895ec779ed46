package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/home"
	"github.com/keyturn/keyturn/telemetry"
)

// connection is a Temporal client and where it is connected: the namespace for calls that
// name it, both for messages.
type connection struct {
	client.Client
	Address   string
	Namespace string
}

// dial connects to Temporal (see connect).
func (g *globals) dial(logger *slog.Logger) (client.Client, error) {
	conn, err := g.connect(logger)
	if err != nil {
		return nil, err
	}
	return conn.Client, nil
}

// connect connects to Temporal the standard way: the Temporal config file and profile
// (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), then the TEMPORAL_* environment variables
// (address, namespace, API key, TLS certificates), then the command's flags on top.
func (g *globals) connect(logger *slog.Logger) (connection, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return connection{}, fmt.Errorf("load Temporal client configuration (TEMPORAL_* variables, profile): %w", err)
	}
	if g.address != "" {
		opts.HostPort = g.address
	}
	if dev, ok := g.homeDir.RunningDev(); ok && opts.HostPort == "" {
		// Nothing names a cluster: talk to the `keyturn dev` that uses this state directory.
		opts.HostPort = dev.Address
		if g.namespace == "" && opts.Namespace == "" {
			opts.Namespace = dev.Namespace
		}
	}
	if opts.HostPort == "" {
		opts.HostPort = "127.0.0.1:7233"
	}
	if g.namespace != "" {
		opts.Namespace = g.namespace
	}
	if opts.Namespace == "" {
		opts.Namespace = client.DefaultNamespace
	}
	opts.Logger = log.NewStructuredLogger(logger)
	if err := g.instrument(&opts, logger); err != nil {
		return connection{}, err
	}
	c, err := g.codec(false)
	if err != nil {
		return connection{}, err
	}
	if c != nil {
		opts.DataConverter = codec.DataConverter(c)
		opts.FailureConverter = codec.FailureConverter(opts.DataConverter)
	} else {
		// No key: payloads go out as they are, and an encrypted one that comes back says
		// which key it needs.
		opts.DataConverter = codec.DataConverter(codec.Keyless())
	}
	cl, err := client.Dial(opts)
	if err != nil {
		return connection{}, fmt.Errorf("connect to Temporal at %s: %w (is `keyturn dev` running, or TEMPORAL_ADDRESS set?)", opts.HostPort, err)
	}
	return connection{Client: cl, Address: opts.HostPort, Namespace: opts.Namespace}, nil
}

// instrument adds tracing (when OTEL_* asks for it) and the Temporal SDK's metrics to a
// client's options, so a trace runs from this command through the workflow it starts.
func (g *globals) instrument(opts *client.Options, logger *slog.Logger) error {
	tel, err := g.telemetry(logger, nil)
	if err != nil {
		return err
	}
	interceptors, err := tel.Interceptors()
	if err != nil {
		return fmt.Errorf("Temporal tracing interceptor: %w", err)
	}
	opts.Interceptors = append(opts.Interceptors, interceptors...)
	opts.MetricsHandler = tel.TemporalMetrics(logger)
	return nil
}

// telemetry sets up the process's telemetry from the OTEL_* variables once; with a
// registry, metrics are also kept there for a Prometheus scrape. The first call decides.
func (g *globals) telemetry(logger *slog.Logger, registry *prometheus.Registry) (*telemetry.Telemetry, error) {
	if g.tel != nil {
		return g.tel, nil
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Registry: registry, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("telemetry (OTEL_* variables): %w", err)
	}
	g.tel = tel
	return tel, nil
}

// closeTelemetry flushes what the command traced and measured, within
// telemetry.ShutdownTimeout.
func (g *globals) closeTelemetry(stderr io.Writer) {
	if g.tel == nil {
		return
	}
	if err := g.tel.Shutdown(context.Background()); err != nil {
		fmt.Fprintln(stderr, "keyturn: warning:", err)
	}
	g.tel = nil
}

// codec loads the payload encryption key: the file named by --codec-key-file or
// KEYTURN_CODEC_KEY_FILE, which must exist unless create is set, or else the state
// directory's codec.key when it exists. No key means payloads are not encrypted (nil,
// nil).
func (g *globals) codec(create bool) (*codec.Codec, error) {
	path := g.codecKey
	if path == "" {
		if !home.Exists(g.homeDir.CodecKey()) {
			return nil, nil
		}
		path = g.homeDir.CodecKey()
	}
	keys, err := codec.LoadKeyFile(path, create)
	if err != nil {
		return nil, err
	}
	return codec.New(keys...)
}
