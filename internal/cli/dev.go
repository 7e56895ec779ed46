//go:build !nodev

package cli

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/devserver"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/home"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/sweep"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

// defaultDevMetricsAddr is where `keyturn dev` serves /metrics unless --metrics-addr says
// otherwise (9464 is the port OpenTelemetry's Prometheus exporters use by convention).
const defaultDevMetricsAddr = "127.0.0.1:9464"

// devSweepInterval is the sweep interval of `keyturn dev`: shorter than a worker's, so
// what a rotation changes shows in the metrics while one watches.
const devSweepInterval = time.Minute

func newDevCmd(g *globals) *cobra.Command {
	var (
		port       int
		uiPort     int
		noUI       bool
		codecPort  int
		demoStore  string
		noPG       bool
		sweepEvery string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this machine: embedded Temporal server and Web UI, worker, file store",
		Long: "Starts an embedded Temporal server (SQLite in the state directory, --home) with its Web UI, the dev file store\n" +
			"and a worker. With -f it serves that inventory; without, it seeds a local CA and serves a demo\n" +
			"certificate (`keyturn rotate demo/cert --wait` works with nothing else installed), and when\n" +
			"PostgreSQL is installed a throwaway cluster (scram-sha-256) with a demo role, demo/app.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			every, err := sweep.Interval(sweepEvery)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			logger := g.logger(cmd.ErrOrStderr())
			stateDir := g.homeDir.String()
			// Refuse a bad inventory before anything is written to the state directory.
			var inv *inventory.Inventory
			if g.inventory != "" {
				var err error
				if inv, err = inventory.Load(g.inventory); err != nil {
					return err
				}
			}
			unlock, err := g.homeDir.Lock()
			if err != nil {
				return err
			}
			defer unlock()
			store, err := file.Open(g.storeDir)
			if err != nil {
				return fmt.Errorf("open file store %s: %w", g.storeDir, err)
			}

			// Payloads are encrypted in dev too, so it behaves like production; the Web UI
			// decrypts them through the codec server on --codec-port.
			if g.codecKey == "" {
				g.codecKey = g.homeDir.CodecKey()
			}
			payloadCodec, err := g.codec(true)
			if err != nil {
				return err
			}
			codecAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(codecPort))
			codecServer, err := serveCodec(codecAddr, payloadCodec, codec.LoopbackAccess(strconv.Itoa(codecPort), strconv.Itoa(uiPort)))
			if err != nil {
				return err
			}
			defer codecServer.Close()

			opts := devserver.Options{
				StateDir:         g.homeDir.Temporal(),
				FrontendAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
				UIAddr:           net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort)),
				DisableUI:        noUI,
				UICodecEndpoint:  "http://" + codecAddr,
				SearchAttributes: workflows.SearchAttributes(),
				Logger:           logger,
			}
			if g.namespace != "" {
				opts.Namespace = g.namespace
			}
			srv, err := devserver.Start(ctx, opts)
			if err != nil {
				return err
			}
			defer func() { _ = srv.Stop() }()

			switch demoStore {
			case "file", "vault", "awssm":
			default:
				return fmt.Errorf("--demo-store %q: use file, vault or awssm", demoStore)
			}
			if demoStore == "vault" && os.Getenv("VAULT_ADDR") == "" {
				return fmt.Errorf("--demo-store vault needs VAULT_ADDR (and VAULT_TOKEN) in the environment")
			}
			if inv == nil {
				env, err := demo.Start(ctx, demo.Options{InventoryPath: g.homeDir.DemoInventory(), CRLFile: g.homeDir.DemoCRL(), Store: store, Logger: logger, StoreType: demoStore, NoPostgres: noPG})
				if err != nil {
					return fmt.Errorf("start the demo (pass -f INVENTORY to use your own targets instead): %w", err)
				}
				defer env.Stop()
				if inv, err = inventory.Load(env.InventoryPath); err != nil {
					return err
				}
			}
			logWarnings(logger, inv)
			invPath, err := filepath.Abs(inv.Path)
			if err != nil {
				return fmt.Errorf("inventory %s: %w", inv.Path, err)
			}

			// Metrics are on by default in dev (--metrics-addr "" turns them off). When the
			// default port is taken (a second dev, a test run beside), any free port does:
			// the banner says which.
			byDefault := !cmd.Flags().Changed("metrics-addr") && g.metricsAddr == ""
			if byDefault {
				g.metricsAddr = defaultDevMetricsAddr
			}
			metrics, err := g.serveMetrics(logger)
			if err != nil && byDefault && g.tel != nil {
				logger.Warn("default metrics address in use; serving on a free port", "address", defaultDevMetricsAddr)
				g.metricsAddr = "127.0.0.1:0"
				metrics, err = g.serveMetrics(logger)
			}
			if err != nil {
				return err
			}
			if metrics != nil {
				defer func() { _ = metrics.Close() }()
			}
			trail, err := g.workerAuditLog(cmd, logger)
			if err != nil {
				return err
			}
			defer func() { _ = trail.Sink.Close() }()
			dc := codec.DataConverter(payloadCodec)
			clientOpts := client.Options{
				HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: log.NewStructuredLogger(logger),
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			}
			if err := g.instrument(&clientOpts, logger); err != nil {
				return err
			}
			c, err := client.Dial(clientOpts)
			if err != nil {
				return fmt.Errorf("connect to the embedded server: %w", err)
			}
			defer c.Close()

			// Other commands find this dev's inventory and server through the state directory.
			if err := g.homeDir.Record(home.Dev{Inventory: invPath, Address: srv.FrontendAddr(), Namespace: srv.Namespace()}); err != nil {
				return err
			}
			fmt.Fprintf(out, "Keyturn dev is running.\n  State:     %s\n  Temporal:  %s (namespace %s)\n", stateDir, srv.FrontendAddr(), srv.Namespace())
			if u := srv.UIURL(); u != "" {
				fmt.Fprintf(out, "  Web UI:    %s/namespaces/%s/workflows\n", u, srv.Namespace())
			}
			fmt.Fprintf(out, "  Inventory: %s (%d secret(s))\n  Store:     %s\n  Payloads:  encrypted with %s (codec server for the UI on %s)\n", invPath, len(inv.Secrets), g.storeDir, g.codecKey, codecAddr)
			if metrics != nil {
				fmt.Fprintf(out, "  Metrics:   http://%s/metrics\n", metrics.Addr)
			}
			fmt.Fprintf(out, "  Sweep:     every %s: secret ages, overdue secrets, outstanding revokes (`keyturn status`)\n", durtext.Day(every))
			fmt.Fprintf(out, "  Audit:     %s (checkpoints signed every %s with %s; `keyturn audit verify`)\n", g.auditPlace(), g.audit.checkpointEvery, g.audit.keyFile)
			if len(inv.Secrets) > 0 {
				kt := g.commandPrefix(cmd)
				fmt.Fprintln(out, "Try, in another terminal:")
				for _, s := range inv.Secrets[:min(len(inv.Secrets), 2)] {
					fmt.Fprintf(out, "  %s rotate %s --wait\n", kt, s.ID)
				}
				fmt.Fprintf(out, "  %s status\n  %s get %s\n", kt, kt, inv.Secrets[0].ID)
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			return runWorker(cmd, c, inv, store, logger, g.tel, every, trail, g.audit.checkpointEvery, 0)
		},
	}
	cmd.Flags().IntVar(&port, "temporal-port", 7233, "port of the embedded Temporal frontend on 127.0.0.1")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "port of the Web UI on 127.0.0.1")
	cmd.Flags().BoolVar(&noUI, "no-ui", false, "do not start the Web UI")
	cmd.Flags().StringVar(&demoStore, "demo-store", "file", "where the demo secret's versions go: file, vault (needs VAULT_ADDR and VAULT_TOKEN) or awssm (needs AWS_REGION and credentials, or AWS_ENDPOINT_URL)")
	cmd.Flags().BoolVar(&noPG, "no-demo-postgres", false, "leave out the demo PostgreSQL; the demo is then the local CA's certificate alone")
	cmd.Flags().IntVar(&codecPort, "codec-port", 8234, "port on 127.0.0.1 of the codec server the Web UI uses to decrypt payloads")
	addSweepFlag(cmd, &sweepEvery, devSweepInterval)
	addAuditWorkerFlags(cmd, &g.audit)
	return cmd
}

// serveCodec serves the payload codec for the Web UI on addr, on loopback only.
func serveCodec(addr string, c *codec.Codec, access codec.Access) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server on %s: %w (use --codec-port)", addr, err)
	}
	srv := &http.Server{Handler: codec.Handler(c, access), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, nil
}
