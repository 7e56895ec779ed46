// Package redistest gives tests throwaway Redis servers started from the machine's
// redis-server binary, each on a free loopback port with an ACL file of its own, with the
// harnesses' rule for a missing server (package testdeps): outside CI a test that needs
// one is skipped with the reason, under CI=true it fails.
package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/loopback"
)

// ErrUnavailable reports that redis-server is not installed on this machine.
var ErrUnavailable = errors.New("redis-server not found on PATH (install Debian's redis-server package)")

// Server is one running throwaway server. Its default user has no password and every
// right, as in a fresh install; tests use it as the superuser that sets the scene.
type Server struct {
	// Addr is the server's host:port on loopback.
	Addr string
	// Dir holds its ACL file and its log.
	Dir string
	// CAPEM is the CA certificate of a TLS server's certificate (StartTLS); nil for a
	// plain one.
	CAPEM []byte
	tls   *tls.Config
	cmd   *exec.Cmd
	bin   string
	args  []string
	// mu guards stopped.
	mu      sync.Mutex
	stopped bool
}

// Start starts a server in a new temporary directory; the caller must call Stop.
func Start() (*Server, error) { return start(false) }

// StartTLS starts a server that speaks TLS only, with a certificate for 127.0.0.1 and
// localhost signed by a CA of its own (CAPEM); clients need no certificate.
func StartTLS() (*Server, error) { return start(true) }

func start(withTLS bool) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrUnavailable
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.acl"), nil, 0o600); err != nil {
		return nil, err
	}
	port, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, bin: bin, args: []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--aclfile", filepath.Join(dir, "users.acl"),
		"--logfile", filepath.Join(dir, "redis.log"),
	}}
	if withTLS {
		if err := s.makeTLS(port); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.run(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Restart starts a killed server again on the same port with the same ACL file.
func (s *Server) Restart() error { return s.run() }

// run starts the process and waits until it answers.
func (s *Server) run() error {
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		// Dial first: go-redis logs every refused dial, and the port opens only once
		// the server is up.
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer within 10s: %w\n%s", s.Addr, err, s.LogTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping dials the server and, once it accepts, asks it for PONG.
func (s *Server) ping(ctx context.Context) error {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	if s.tls != nil {
		err = tls.Client(conn, s.tls.Clone()).HandshakeContext(ctx)
	}
	_ = conn.Close()
	if err != nil {
		return err
	}
	c := s.Super()
	defer c.Close()
	return c.Ping(ctx).Err()
}

// Super returns a client of the default (all-powerful) user.
func (s *Server) Super() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialerRetries: 1, TLSConfig: s.tls})
}

// Login returns a client that logs in as user with password on first use.
func (s *Server) Login(user, password string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Username: user, Password: password, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialerRetries: 1, TLSConfig: s.tls})
}

// Stop ends the server and removes its directory. Stopping twice is harmless.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	return os.RemoveAll(s.Dir)
}

// Kill ends the server abruptly and keeps its directory, for a test of a node that is
// down; Restart brings it back on the same port with the same ACL file.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Pause stops the server's process (SIGSTOP): connections open but nothing answers, as
// on a node that hangs. Resume continues it.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// ACLFile returns the text of the server's ACL file.
func (s *Server) ACLFile() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "users.acl"))
	return string(b)
}

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// unavailable remembers why Main could not start the servers, for Need to report.
var unavailable testdeps.Missing

// Main runs a package's tests against n shared servers. Call it from TestMain:
//
//	var servers []*redistest.Server
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &servers, 2)) }
//
// and begin each test that needs them with `nodes := redistest.Need(t, servers)`.
func Main(m *testing.M, servers *[]*Server, n int) int {
	var started []*Server
	for range n {
		s, err := Start()
		if errors.Is(err, ErrUnavailable) && !testdeps.InCI() {
			unavailable.Record(err.Error())
			fmt.Fprintf(os.Stderr, "redistest: tests that need Redis will be skipped: %v\n", err)
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "redistest: %v\n", err)
			for _, s := range started {
				_ = s.Stop()
			}
			return 1
		}
		started = append(started, s)
	}
	if len(started) == n {
		*servers = started
	}
	code := m.Run()
	for _, s := range started {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "redistest: log of %s (tail):\n%s\n", s.Addr, s.LogTail())
		}
		if err := s.Stop(); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "redistest: %v\n", err)
			code = 1
		}
	}
	*servers = nil
	return code
}

// Need returns the servers Main started, or skips the test with the reason they are
// missing.
func Need(t testing.TB, servers []*Server) []*Server {
	t.Helper()
	if len(servers) > 0 {
		return servers
	}
	unavailable.Skip(t, "redistest")
	return nil
}

// AdminRules are the ACL rules of the least-privilege admin the rotator needs: read and
// change users, save the ACL file, list and end connections, and read command flags.
// docs/kinds/redis.md lists the same rules; the tests prove they are enough.
var AdminRules = []string{"-@all", "+acl|getuser", "+acl|setuser", "+acl|save", "+client|list", "+client|kill", "+command|info"}

// CreateAdmin creates user on s with password and AdminRules.
func (s *Server) CreateAdmin(ctx context.Context, user, password string) error {
	rules := append([]string{"reset", "on", ">" + password}, AdminRules...)
	return s.SetUser(ctx, user, rules...)
}

// SetUser runs ACL SETUSER user rules... as the default user.
func (s *Server) SetUser(ctx context.Context, user string, rules ...string) error {
	c := s.Super()
	defer c.Close()
	args := []any{"ACL", "SETUSER", user}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("ACL SETUSER %s: %s", user, strings.ReplaceAll(err.Error(), password(rules), "[redacted]"))
	}
	return nil
}

// password returns the cleartext password among rules (">pw"), for redaction.
func password(rules []string) string {
	for _, r := range rules {
		if strings.HasPrefix(r, ">") {
			return r[1:]
		}
	}
	return "\x00"
}
