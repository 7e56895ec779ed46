package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/home"
)

// codecServerFlags configure `keyturn codec-server`.
type codecServerFlags struct {
	listen            string
	tlsCert, tlsKey   string
	plainHTTP         bool
	hosts, origins    []string
	auth              codec.AuthOptions
	shutdownTimeout   time.Duration
	readHeaderTimeout time.Duration
}

func newCodecServerCmd(g *globals) *cobra.Command {
	f := codecServerFlags{shutdownTimeout: 10 * time.Second, readHeaderTimeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the payload codec to the Temporal Web UI: TLS, authentication, CORS allow-list",
		Long: "Decrypts and encrypts payloads for the Temporal Web UI (POST /decode and /encode) with the key file of\n" +
			"--codec-key-file: its first key encrypts, the others only decrypt older payloads, and the file is read\n" +
			"again when it changes. Anyone it answers can read every payload of the namespace, so it requires\n" +
			"authentication (a bearer token from --token-file, and/or the Web UI's forwarded access token validated\n" +
			"against --jwks-url and --jwt-issuer), serves TLS (--tls-cert, --tls-key) unless --plain-http says a\n" +
			"proxy terminates it, answers only the names of --allow-host and, from a browser, the pages of\n" +
			"--allow-origin (the Web UI's address).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCodecServer(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "0.0.0.0:8234", "host:port to listen on")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM, with its chain)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "serve plain HTTP, for a proxy or ingress that terminates TLS in front of it")
	fl.StringArrayVar(&f.hosts, "allow-host", nil, "a name callers reach this server by, as in their Host header (codec.example.com, or host:port when not on 443); repeat for several")
	fl.StringArrayVar(&f.origins, "allow-origin", nil, "the Web UI's origin (https://temporal-ui.example.com); repeat for several; none: browsers are refused")
	fl.StringVar(&f.auth.TokenFile, "token-file", "", "file holding the bearer token non-browser callers send (mode 0600; read again when it changes)")
	fl.StringVar(&f.auth.JWKSURL, "jwks-url", "", "JWKS of the identity provider whose access tokens the Web UI forwards")
	fl.StringVar(&f.auth.Issuer, "jwt-issuer", "", "with --jwks-url: the issuer (iss) the access tokens must name")
	fl.StringVar(&f.auth.Audience, "jwt-audience", "", "with --jwks-url: the audience (aud) the access tokens must name")
	return cmd
}

func runCodecServer(cmd *cobra.Command, g *globals, f codecServerFlags) error {
	logger := g.logger(cmd.ErrOrStderr())
	keyFile := g.codecKey
	if keyFile == "" && home.Exists(g.homeDir.CodecKey()) {
		keyFile = g.homeDir.CodecKey()
	}
	if keyFile == "" {
		return errors.New("no codec key: pass --codec-key-file (KEYTURN_CODEC_KEY_FILE), the same file the workers use")
	}
	if len(f.hosts) == 0 {
		return errors.New("no --allow-host: name the host the Web UI's browser calls this server by (e.g. --allow-host codec.example.com)")
	}
	if f.plainHTTP == (f.tlsCert != "" || f.tlsKey != "") {
		return errors.New("pass --tls-cert and --tls-key, or --plain-http when a proxy in front terminates TLS")
	}
	if !f.plainHTTP && (f.tlsCert == "" || f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	f.auth.Warn = func(err error) { logger.Warn("codec token file changed and is refused", "error", err) }
	auth, err := codec.NewAuth(cmd.Context(), f.auth)
	if err != nil {
		return err
	}
	payloads, err := codec.WatchKeyFile(keyFile, func(err error) { logger.Warn("codec key file changed but was not taken", "error", err) })
	if err != nil {
		return fmt.Errorf("--codec-key-file: %w", err)
	}
	hosts := make([]string, len(f.hosts))
	for i, h := range f.hosts {
		hosts[i] = strings.ToLower(h)
	}
	if len(f.origins) == 0 {
		logger.Warn("no --allow-origin: requests from a browser (the Web UI) are refused")
	}
	access := codec.Access{Hosts: hosts, Origins: f.origins, Auth: auth,
		Refused: func(r *http.Request, status int, reason string) {
			logger.Info("codec request refused", "status", status, "reason", reason, "remote", r.RemoteAddr, "path", r.URL.Path)
		}}
	srv := &http.Server{Handler: codec.Handler(payloads, access), ReadHeaderTimeout: f.readHeaderTimeout,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	if !f.plainHTTP {
		certs := &certReloader{certFile: f.tlsCert, keyFile: f.tlsKey, warn: func(err error) { logger.Warn("TLS certificate changed but was not taken", "error", err) }}
		if err := certs.load(); err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("codec server: listen on %s: %w (use --listen)", f.listen, err)
	}
	scheme := "http"
	if srv.TLSConfig != nil {
		l = tls.NewListener(l, srv.TLSConfig)
		scheme = "https"
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	fmt.Fprintf(cmd.OutOrStdout(), "codec server listening on %s://%s for hosts %s\n", scheme, l.Addr(), strings.Join(hosts, ", "))
	select {
	case err := <-done:
		return fmt.Errorf("codec server: %w", err)
	case <-cmd.Context().Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	return srv.Shutdown(ctx)
}

// certReloader serves the TLS certificate of certFile and keyFile, loaded again when
// either file changes (a renewal by cert-manager, say); a pair that does not load (the
// certificate written before its key) is reported and tried again at the next change of
// either, and the pair before stays in use.
type certReloader struct {
	certFile, keyFile string
	warn              func(error)

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded string // the stamps of the pair in use
	bad    string // the stamps of the last pair that did not load
}

// stamps identifies the two files' versions.
func (c *certReloader) stamps() (string, error) {
	var out []string
	for _, p := range []string{c.certFile, c.keyFile} {
		info, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("%d/%d", info.ModTime().UnixNano(), info.Size()))
	}
	return strings.Join(out, " "), nil
}

func (c *certReloader) load() error {
	stamps, err := c.stamps()
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.bad = stamps
		return fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.loaded = &cert, stamps
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stamps, err := c.stamps(); err == nil && stamps != c.loaded && stamps != c.bad {
		if err := c.load(); err != nil {
			c.warn(err)
		}
	}
	return c.cert, nil
}
