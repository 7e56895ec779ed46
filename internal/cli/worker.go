package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/priority"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/internal/sweep"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/worker"
)

func newWorkerCmd(g *globals) *cobra.Command {
	var sweepEvery string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Keyturn worker against a Temporal cluster (TEMPORAL_* variables, profiles, TLS)",
		Long: "Runs the rotation workflows and activities for the secrets in the inventory.\n" +
			"Temporal is reached the standard way: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,\n" +
			"TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH / TEMPORAL_TLS_SERVER_CA_CERT_PATH,\n" +
			"or a profile in the Temporal config file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			every, err := sweep.Interval(sweepEvery)
			if err != nil {
				return err
			}
			logger := g.logger(cmd.ErrOrStderr())
			inv, store, err := g.loadInventoryAndStore()
			if err != nil {
				return err
			}
			logWarnings(logger, inv)
			if k, err := g.codec(false); err == nil && k == nil {
				logger.Warn("payloads are not encrypted: set --codec-key-file (KEYTURN_CODEC_KEY_FILE) to encrypt them")
			}
			metrics, err := g.serveMetrics(logger)
			if err != nil {
				return err
			}
			if metrics != nil {
				defer func() { _ = metrics.Close() }()
				logger.Info("serving Prometheus metrics", "url", "http://"+metrics.Addr+"/metrics")
			}
			trail, err := g.workerAuditLog(cmd, logger)
			if err != nil {
				return err
			}
			defer func() { _ = trail.Sink.Close() }()
			conn, err := g.connect(logger)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := checkNamespace(cmd.Context(), conn, logger); err != nil {
				return err
			}
			return runWorker(cmd, conn.Client, inv, store, logger, g.tel, every, trail, g.audit.checkpointEvery, workerStopTimeout)
		},
	}
	addSweepFlag(cmd, &sweepEvery, sweep.DefaultInterval)
	addAuditWorkerFlags(cmd, &g.audit)
	return cmd
}

// addSweepFlag adds --sweep-interval, KEYTURN_SWEEP_INTERVAL, with the command's default.
func addSweepFlag(cmd *cobra.Command, dst *string, fallback time.Duration) {
	cmd.Flags().StringVar(dst, "sweep-interval", envOr("KEYTURN_SWEEP_INTERVAL", durtext.Day(fallback)),
		"how often the worker reads every secret's store and rotations for the age, overdue and revoke metrics and the overdue notifications (KEYTURN_SWEEP_INTERVAL; at least "+sweep.MinInterval.String()+")")
}

// serveMetrics sets up telemetry with a Prometheus registry and serves it at /metrics on
// --metrics-addr; nil when the address is empty. Call it before dial, so the client's
// Temporal SDK metrics land in the same registry.
func (g *globals) serveMetrics(logger *slog.Logger) (*telemetry.MetricsServer, error) {
	if g.metricsAddr == "" {
		return nil, nil
	}
	tel, err := g.telemetry(logger, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	return tel.ServeMetrics(g.metricsAddr)
}

func (g *globals) loadInventoryAndStore() (*inventory.Inventory, *file.Store, error) {
	if g.inventory == "" {
		return nil, nil, fmt.Errorf("no inventory: pass -f FILE or set KEYTURN_INVENTORY")
	}
	inv, err := inventory.Load(g.inventory)
	if err != nil {
		return nil, nil, err
	}
	// The worker may create the store: it is where new versions go. Its directory is
	// logged at start so a mistyped --store-dir shows.
	store, err := file.Open(g.storeDir)
	if err != nil {
		return nil, nil, fmt.Errorf("open file store %s: %w", g.storeDir, err)
	}
	return inv, store, nil
}

// workerStopTimeout is how long a stopping `keyturn worker` (SIGINT, SIGTERM) lets its
// running activities finish before it cancels them: a step is short, and a rotation cut
// off between two steps resumes on another worker. A Kubernetes pod's grace period must be
// longer (the Helm chart gives 60 s). `keyturn dev` stops at once, as a developer's
// Ctrl-C expects; its rotations resume when it starts again.
const workerStopTimeout = 45 * time.Second

// runWorker runs a worker until the command's context ends (SIGINT or SIGTERM in the
// binary), then stops it, letting running activities finish within
// stopTimeout (0 cancels them at once).
//
// Beside it runs the secret sweep, every sweepEvery and once at start, which keeps the
// age, overdue and revoke gauges current on tel's meter and notifies overdue secrets.
//
// Every change it makes is recorded on trail, whose checkpoints it signs every
// g.audit.checkpointEvery and once more as it stops.
func runWorker(cmd *cobra.Command, c client.Client, inv *inventory.Inventory, store *file.Store, logger *slog.Logger, tel *telemetry.Telemetry, sweepEvery time.Duration, trail *audit.Log, checkpointEvery, stopTimeout time.Duration) error {
	resolver := binding.New(inv, backends(store, logger, tel.TracerProvider()))
	defer func() { _ = resolver.Close() }()
	gauges, err := telemetry.NewSecretGauges(tel)
	if err != nil {
		return err
	}
	// The sweep stands aside while this worker contains an incident's scope.
	urgent := &priority.Gate{}
	sw := &sweep.Sweep{
		Observer: &secretstate.Observer{Inventory: inv, Stores: resolver, Temporal: c, Gate: urgent},
		Gauges:   gauges, Notifier: resolver, Interval: sweepEvery, Logger: logger, TracerProvider: tel.TracerProvider(),
	}
	w := worker.New(c, resolver, sdkworker.Options{Identity: workerIdentity(), WorkerStopTimeout: stopTimeout}, worker.WithSchedules(schedules.Pauser{Client: c}), worker.WithTelemetry(tel), worker.WithAudit(trail), worker.WithUrgency(urgent))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker started", "task_queue", worker.TaskQueue, "secrets", len(inv.Secrets), "inventory", inv.Path, "store", store.Dir(), "sweep_interval", durtext.Day(sweepEvery))
	sweepCtx, stopSweep := context.WithCancel(cmd.Context())
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		sw.Run(sweepCtx)
	}()
	checkpointCtx, stopCheckpoints := context.WithCancel(context.WithoutCancel(cmd.Context()))
	checkpointed := make(chan struct{})
	go func() {
		defer close(checkpointed)
		trail.RunCheckpoints(checkpointCtx, checkpointEvery)
	}()
	<-cmd.Context().Done()
	stopSweep()
	w.Stop()
	<-swept
	// After the worker stopped: the last checkpoint signs the records of its last steps.
	stopCheckpoints()
	<-checkpointed
	logger.Info("worker stopped")
	return nil
}
