// Package cli holds the keyturn command line: one cobra command per file. The binary in
// cmd/keyturn only calls Execute, so tests drive the very same commands in process.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/home"
	"github.com/keyturn/keyturn/telemetry"
)

// globals are the flags every command shares.
type globals struct {
	address   string
	namespace string
	inventory string
	home      string
	homeDir   home.Dir // resolved from home before any command runs
	storeDir  string
	codecKey  string
	logLevel  string
	// audit names the audit trail's sink and signing key (see auditlog.go).
	audit auditFlags
	// metricsAddr is where the worker serves /metrics; empty: nowhere.
	metricsAddr string
	// tel is the process's telemetry, set up by the first command that needs it and
	// flushed by Execute when the command returns.
	tel *telemetry.Telemetry
}

// NewRoot builds the keyturn command tree.
func NewRoot() *cobra.Command {
	root, _ := newRoot()
	return root
}

func newRoot() (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:   "keyturn",
		Short: "Rotate credentials with durable Temporal workflows",
		Long: "Keyturn rotates credentials (PostgreSQL roles, AWS IAM access keys, HTTP API keys, TLS certificates)\n" +
			"in four steps, create, test, promote, revoke, as Temporal workflows you can watch in the Web UI.\n\n" +
			"State (the dev server's database, the file store, the payload key) lives in one directory:\n" +
			"--home, else KEYTURN_HOME, else $XDG_DATA_HOME/keyturn (~/.local/share/keyturn).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.address, "address", "", "Temporal frontend host:port (default: TEMPORAL_ADDRESS, the Temporal config profile, the keyturn dev running on --home, or 127.0.0.1:7233)")
	pf.StringVar(&g.namespace, "namespace", "", "Temporal namespace (default: TEMPORAL_NAMESPACE, the profile, or \"default\")")
	pf.StringVarP(&g.inventory, "inventory", "f", envOr("KEYTURN_INVENTORY", ""), "inventory file (default: KEYTURN_INVENTORY; rotate, incident and put also use the one of the keyturn dev running on --home)")
	pf.StringVar(&g.home, "home", "", "Keyturn's state directory (default: KEYTURN_HOME, else $XDG_DATA_HOME/keyturn, else ~/.local/share/keyturn)")
	pf.StringVar(&g.storeDir, "store-dir", envOr("KEYTURN_STORE_DIR", ""), "directory of the dev file store (KEYTURN_STORE_DIR; default <home>/store)")
	g.audit.register(pf)
	pf.StringVar(&g.codecKey, "codec-key-file", envOr("KEYTURN_CODEC_KEY_FILE", ""), "payload encryption key file (KEYTURN_CODEC_KEY_FILE; default <home>/codec.key when it exists)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.metricsAddr, "metrics-addr", envOr("KEYTURN_METRICS_ADDR", ""), "host:port where the worker serves Prometheus metrics at /metrics (KEYTURN_METRICS_ADDR; default off, 127.0.0.1:9464 in dev; \"\" turns it off)")

	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.resolveHome() }
	root.AddCommand(
		newDevCmd(g),
		newWorkerCmd(g),
		newSetupCmd(g),
		newCodecServerCmd(g),
		newCodecKeyCmd(),
		newRotateCmd(g),
		newSignalCmd(g, "abort"),
		newSignalCmd(g, "skip-grace"),
		newSignalCmd(g, "retry-now"),
		newSignalCmd(g, "give-up"),
		newSignalCmd(g, "revoke-now"),
		newStatusCmd(g),
		newGetCmd(g),
		newPutCmd(g),
		newConfigCmd(g),
		newIncidentCmd(g),
		newAuditCmd(g),
		newApplyCmd(g),
		newDiffCmd(g),
		newSchedulesCmd(g),
		newNotifyCmd(g),
		newAgentCmd(g),
	)
	return root, g
}

// Execute runs the command line and returns the process exit code: 0 on success, 1 on
// any failure, with the error on stderr.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, g := newRoot()
	defer g.closeTelemetry(stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "keyturn:", err)
		return ExitCode(err)
	}
	return 0
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func (g *globals) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// resolveHome fixes the state directory and the defaults that live in it, once, before
// any command runs, so every command agrees on where the store and the codec key are
// whatever directory it is run from.
func (g *globals) resolveHome() error {
	dir, err := home.Resolve(g.home)
	if err != nil {
		return err
	}
	g.homeDir = dir
	if g.storeDir == "" {
		g.storeDir = dir.Store()
	}
	g.audit.defaults(dir)
	return nil
}
