// Package vaulttest starts a real HashiCorp Vault server for tests: bin/vaultdev, built
// from the nested module tools/vaultdev by `make tools`. The server runs as a child
// process on a free port of 127.0.0.1, with KV v2 at secret/ and AppRole auth at
// approle/, and is stopped when the test ends.
//
// Vault is under the BUSL licence, so the Keyturn module never links it: this package
// imports only the standard library and Vault's MPL-licensed API client.
//
// When bin/vaultdev is missing the test is skipped with a hint, unless the environment
// variable CI parses as true: there a missing server is a broken runner and the test fails.
package vaulttest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

// missingHint is the message of a skip (or, under CI, a failure) when the binary is absent.
const missingHint = "bin/vaultdev missing: run make tools"

// readyTimeout bounds the wait for the VAULT_ADDR line. A warm start takes well under a
// second; the margin is for a loaded two-core CI runner.
const readyTimeout = 20 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before it kills the server.
const stopTimeout = 10 * time.Second

// errMissing reports that bin/vaultdev was not found; see missingHint.
var errMissing = errors.New(missingHint)

// Options adjust a server. The zero value is an in-memory server.
type Options struct {
	// DataDir keeps Vault's storage, unseal key and root token on disk so data survives
	// Restart. Empty keeps everything in memory. The caller owns the directory (use
	// t.TempDir()).
	DataDir string
	// TLSCert and TLSKey, PEM files, make the server speak HTTPS only. Client trusts
	// TLSCert as its CA, so a self-signed certificate for 127.0.0.1 works.
	TLSCert string
	TLSKey  string
}

// Server is a running vaultdev process.
type Server struct {
	// Addr is the server's URL, http://127.0.0.1:PORT.
	Addr string
	// Token is a root token.
	Token string

	bin  string
	opts Options
	// listen is the address passed to -addr: port 0 on the first start, the port the
	// server got on every restart so clients keep their address.
	listen string

	mu   sync.Mutex
	proc *process
}

// process is one run of the binary.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it also stops the server (-stop-on-stdin-eof)
	done   chan struct{}  // closed when the process has exited
	stderr *tailBuffer
}

// Start starts a server and registers its Stop with t.Cleanup. See the package doc for
// what happens when the binary is missing.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(opts)
	if errors.Is(err, errMissing) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	return s
}

// Main runs m with one in-memory server shared by the package's tests, for use in
// TestMain:
//
//	var shared *vaulttest.Server
//
//	func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }
//
// When the binary is missing and CI is not true, *s stays nil and the tests run anyway;
// a test that needs the server gets it through Shared, which skips. Under CI a missing
// binary, and anywhere a server that fails to start, makes Main return 1 without running
// the tests.
func Main(m *testing.M, s **Server) int {
	srv, err := newServer(Options{})
	if errors.Is(err, errMissing) && !testdeps.InCI() {
		return m.Run()
	}
	if err == nil {
		err = srv.start()
	}
	if err != nil {
		srv.Stop()
		fmt.Fprintln(os.Stderr, "vaulttest:", err)
		return 1
	}
	*s = srv
	defer srv.Stop()
	return m.Run()
}

// Shared returns the server Main started, or skips the test (fails it under CI) when
// Main found no binary.
func Shared(t testing.TB, s *Server) *Server {
	t.Helper()
	if s == nil {
		skipOrFail(t, errMissing)
	}
	return s
}

// Client returns an API client for the server, authenticated with the root token. It
// ignores the VAULT_* environment of the developer running the tests.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := newClient(s.Addr, s.Token, s.opts.TLSCert)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	return c
}

// newClient returns an API client for addr using token and trusting caFile if set, not
// influenced by VAULT_* environment variables.
func newClient(addr, token, caFile string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("client config: %w", cfg.Error)
	}
	cfg.Address = addr
	cfg.AgentAddress = ""
	cfg.MaxRetries = 0
	if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: caFile}); err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	c.ClearNamespace()
	c.SetToken(token)
	return c, nil
}

// Stop ends the server with SIGTERM and waits for it to exit, killing it if it takes
// longer than a few seconds. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Restart stops the server if it runs and starts it again on the same port with the
// same options. With a DataDir the data and the root token survive; without one the new
// server starts empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	// The port was free a moment ago; another process may grab it in between, so try a
	// few times before failing.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("vaulttest: restart: %v", err)
}

// newServer finds the binary and picks a root token; it starts nothing.
func newServer(opts Options) (*Server, error) {
	bin, err := testdeps.Tool("vaultdev")
	if errors.Is(err, testdeps.ErrToolMissing) {
		return nil, fmt.Errorf("%w (%v)", errMissing, err)
	}
	if err != nil {
		return nil, err
	}
	token := make([]byte, 12)
	_, _ = rand.Read(token) // crypto/rand.Read never fails on supported platforms
	return &Server{
		Token:  "keyturn-test-" + hex.EncodeToString(token),
		bin:    bin,
		opts:   opts,
		listen: "127.0.0.1:0",
	}, nil
}

// start runs the binary and waits for its VAULT_ADDR line.
func (s *Server) start() error {
	args := []string{"-addr", s.listen, "-root-token", s.Token, "-stop-on-stdin-eof"}
	if s.opts.DataDir != "" {
		args = append(args, "-data", s.opts.DataDir)
	}
	if s.opts.TLSCert != "" || s.opts.TLSKey != "" {
		args = append(args, "-tls-cert", s.opts.TLSCert, "-tls-key", s.opts.TLSKey)
	}
	cmd := exec.Command(s.bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("start vaultdev: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("start vaultdev: %w", err)
	}
	p := &process{cmd: cmd, stdin: stdin, done: make(chan struct{}), stderr: newTailBuffer(16 << 10)}
	cmd.Stderr = p.stderr
	if os.Getenv("KEYTURN_TEST_VERBOSE") == "1" {
		cmd.Stderr = io.MultiWriter(p.stderr, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start vaultdev: %w", err)
	}

	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "VAULT_ADDR="); ok {
				select {
				case addrCh <- addr:
				default:
				}
			}
		}
		// Drain to the end so the child never blocks on a full pipe, then reap it.
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()

	var addr string
	select {
	case addr = <-addrCh:
	case <-p.done:
		_ = stdin.Close()
		return fmt.Errorf("vaultdev exited before it was ready (%s); its log:\n%s", cmd.ProcessState, p.stderr)
	case <-time.After(readyTimeout):
		p.stop()
		return fmt.Errorf("vaultdev not ready after %s; its log:\n%s", readyTimeout, p.stderr)
	}

	u, err := url.Parse(addr)
	if err != nil {
		p.stop()
		return fmt.Errorf("vaultdev printed a bad address: %w", err)
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil {
		if _, err := strconv.Atoi(port); err == nil {
			s.listen = "127.0.0.1:" + port
		}
	}
	s.mu.Lock()
	s.Addr = addr
	s.proc = p
	s.mu.Unlock()
	return nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.stdin.Close()
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if testdeps.InCI() {
		t.Fatalf("vaulttest: %v", err)
	}
	t.Skipf("vaulttest: %v", err)
}
