// Command vaultdev runs a real HashiCorp Vault server in one process, for Keyturn's tests
// and for local development: KV v2 mounted at secret/, AppRole auth at approle/, a fixed
// root token, and either in-memory storage or a directory that survives restarts.
//
// It lives in its own Go module because Vault is under the BUSL licence: the Keyturn
// module must never link it. Tests start the built binary (bin/vaultdev) as a child
// process instead of importing it.
//
// Usage:
//
//	vaultdev [-addr 127.0.0.1:8200] [-root-token root] [-data DIR] [-tls-cert F -tls-key F]
//
// When the server is ready it prints exactly one line to stdout,
// VAULT_ADDR=http://127.0.0.1:PORT, and then serves until SIGTERM or SIGINT. Everything
// else (Vault's own log) goes to stderr.
//
// This is not a production server: one unseal key share, kept in plain text in the data
// directory next to the root token.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/vault"
)

// options are the command-line flags.
type options struct {
	addr      string
	rootToken string
	dataDir   string
	tlsCert   string
	tlsKey    string
	logLevel  string
	// stopOnEOF ends the server when its standard input closes. A test binary that
	// starts vaultdev holds the write end of that pipe, and the kernel closes it however
	// the test binary ends, so a timed-out test leaves no server behind.
	stopOnEOF bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8200", "listen address; port 0 picks a free port")
	flag.StringVar(&o.rootToken, "root-token", "root", "ID of the root token")
	flag.StringVar(&o.dataDir, "data", "", "storage directory (Vault's file backend); empty keeps everything in memory")
	flag.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate to serve HTTPS with (needs -tls-key)")
	flag.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for -tls-cert")
	flag.StringVar(&o.logLevel, "log-level", "warn", "Vault log level on stderr: trace, debug, info, warn, error")
	flag.BoolVar(&o.stopOnEOF, "stop-on-stdin-eof", false, "stop when standard input is closed (for test harnesses)")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.rootToken == "" {
		return errors.New("-root-token must not be empty")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.stopOnEOF {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}

	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "vault",
		Level:  hclog.LevelFromString(o.logLevel),
		Output: os.Stderr,
	})

	// Listen before building the core so a taken port fails fast, before any storage is
	// initialized.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	core, err := newCore(o.dataDir, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := core.Shutdown(); err != nil {
			logger.Error("core shutdown", "error", err)
		}
	}()

	if err := initAndUnseal(ctx, core, o.dataDir, o.rootToken); err != nil {
		return err
	}
	if err := configure(ctx, core, o.rootToken); err != nil {
		return err
	}

	handler := vaulthttp.Handler.Handler(&vault.HandlerProperties{
		Core: core,
		// The handler reads listener settings unconditionally; zero values are Vault's
		// defaults.
		ListenerConfig: &configutil.Listener{},
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}

	scheme := "http"
	serveErr := make(chan error, 1)
	if o.tlsCert != "" {
		// Load the pair now, so a bad file fails before the readiness line, not after.
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		scheme = "https"
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}

	// The one line on stdout is the readiness signal parsed by internal/harness/vaulttest.
	fmt.Printf("VAULT_ADDR=%s://%s\n", scheme, ln.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
