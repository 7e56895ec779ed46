package cli

import (
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/log"
)

// dial connects to Temporal the standard way: the Temporal config file and profile
// (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), then the TEMPORAL_* environment variables
// (address, namespace, API key, TLS certificates), then the command's flags on top.
func (g *globals) dial(logger *slog.Logger) (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("load Temporal client configuration (TEMPORAL_* variables, profile): %w", err)
	}
	if g.address != "" {
		opts.HostPort = g.address
	}
	if opts.HostPort == "" {
		opts.HostPort = "127.0.0.1:7233"
	}
	if g.namespace != "" {
		opts.Namespace = g.namespace
	}
	opts.Logger = log.NewStructuredLogger(logger)
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w (is `keyturn dev` running, or TEMPORAL_ADDRESS set?)", opts.HostPort, err)
	}
	return c, nil
}
