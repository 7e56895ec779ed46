package cli

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/devserver"
	"github.com/keyturn/keyturn/internal/config"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

func newDevCmd(g *globals) *cobra.Command {
	var (
		stateDir  string
		port      int
		uiPort    int
		noUI      bool
		codecPort int
		demoStore string
		noPG      bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this machine: embedded Temporal server and Web UI, worker, file store",
		Long: "Starts an embedded Temporal server (SQLite in --state-dir) with its Web UI, the dev file store\n" +
			"and a worker. With -f it serves that inventory; without, it seeds a local CA and serves a demo\n" +
			"certificate (`keyturn rotate demo/cert --wait` works with nothing else installed), and when\n" +
			"PostgreSQL is installed a throwaway cluster (scram-sha-256) with a demo role, demo/app.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			logger := g.logger(cmd.ErrOrStderr())
			unlock, err := lockStateDir(stateDir)
			if err != nil {
				return err
			}
			defer unlock()
			// The store lives with the rest of the state unless the user put it elsewhere.
			if !cmd.Flags().Changed("store-dir") && os.Getenv("KEYTURN_STORE_DIR") == "" {
				g.storeDir = filepath.Join(stateDir, "store")
			}
			store, err := file.Open(g.storeDir)
			if err != nil {
				return fmt.Errorf("open file store %s: %w", g.storeDir, err)
			}

			// Payloads are encrypted in dev too, so it behaves like production; the Web UI
			// decrypts them through the codec server on --codec-port.
			if g.codecKey == "" {
				g.codecKey = filepath.Join(stateDir, "codec.key")
			}
			payloadCodec, err := g.codec(true)
			if err != nil {
				return err
			}
			uiOrigin := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort))
			codecAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(codecPort))
			codecServer, err := serveCodec(codecAddr, payloadCodec, uiOrigin)
			if err != nil {
				return err
			}
			defer codecServer.Close()

			opts := devserver.Options{
				StateDir:         filepath.Join(stateDir, "temporal"),
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
			inventory := g.inventory
			if inventory == "" {
				env, err := demo.Start(ctx, demo.Options{StateDir: stateDir, Store: store, Logger: logger, StoreType: demoStore, NoPostgres: noPG})
				if err != nil {
					return fmt.Errorf("start the demo (pass -f INVENTORY to use your own targets instead): %w", err)
				}
				defer env.Stop()
				inventory = env.InventoryPath
			}
			inv, err := config.Load(inventory)
			if err != nil {
				return err
			}

			dc := codec.DataConverter(payloadCodec)
			c, err := client.Dial(client.Options{
				HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: log.NewStructuredLogger(logger),
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			})
			if err != nil {
				return fmt.Errorf("connect to the embedded server: %w", err)
			}
			defer c.Close()

			fmt.Fprintf(out, "Keyturn dev is running.\n  Temporal:  %s (namespace %s)\n", srv.FrontendAddr(), srv.Namespace())
			if u := srv.UIURL(); u != "" {
				fmt.Fprintf(out, "  Web UI:    %s/namespaces/%s/workflows\n", u, srv.Namespace())
			}
			fmt.Fprintf(out, "  Inventory: %s (%d secret(s))\n  Store:     %s\n  Payloads:  encrypted with %s (codec server for the UI on %s)\n", inventory, len(inv.Secrets), g.storeDir, g.codecKey, codecAddr)
			if len(inv.Secrets) > 0 {
				fmt.Fprintln(out, "Try, in another terminal:")
				for _, s := range inv.Secrets[:min(len(inv.Secrets), 2)] {
					fmt.Fprintf(out, "  keyturn rotate %s --wait\n", s.ID)
				}
				id := inv.Secrets[0].ID
				fmt.Fprintf(out, "  keyturn status\n  keyturn get %s --store-dir %s\n", id, g.storeDir)
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			return runWorker(cmd, c, inv, store, logger)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".keyturn", "where the embedded server's database, the file store and the demo live")
	cmd.Flags().IntVar(&port, "temporal-port", 7233, "port of the embedded Temporal frontend on 127.0.0.1")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "port of the Web UI on 127.0.0.1")
	cmd.Flags().BoolVar(&noUI, "no-ui", false, "do not start the Web UI")
	cmd.Flags().StringVar(&demoStore, "demo-store", "file", "where the demo secret's versions go: file, vault (needs VAULT_ADDR and VAULT_TOKEN) or awssm (needs AWS_REGION and credentials, or AWS_ENDPOINT_URL)")
	cmd.Flags().BoolVar(&noPG, "no-demo-postgres", false, "leave out the demo PostgreSQL; the demo is then the local CA's certificate alone")
	cmd.Flags().IntVar(&codecPort, "codec-port", 8234, "port on 127.0.0.1 of the codec server the Web UI uses to decrypt payloads")
	return cmd
}

// serveCodec serves the payload codec for the Web UI on addr, on loopback only.
func serveCodec(addr string, c *codec.Codec, uiOrigin string) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server on %s: %w (use --codec-port)", addr, err)
	}
	srv := &http.Server{Handler: codec.Handler(c, uiOrigin), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, nil
}

// lockStateDir makes sure one `keyturn dev` at a time uses a state directory: two would
// share one SQLite database and one file store behind each other's backs.
func lockStateDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "dev.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another keyturn dev is using %s: stop it, or pass --state-dir", dir)
	}
	return func() { _ = f.Close() }, nil
}
