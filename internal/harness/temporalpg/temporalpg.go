// Package temporalpg runs Temporal as production does, for tests and benchmarks: the
// server's own binary (bin/temporal-server, from tools/temporalserver) as a separate
// process, persisted in a throwaway PostgreSQL cluster with fsync on, its schema made by
// the server's own tool (bin/temporal-sql-tool) with the commands of deploy/compose, and
// configured, like the compose stack, from environment variables and
// deploy/compose/temporal-dynamicconfig.yaml. The embedded server of `keyturn dev`
// (devserver, SQLite) is the default everywhere else; this is the layout to measure
// against.
package temporalpg

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/setup"
	"github.com/keyturn/keyturn/workflows"
)

// Namespace is the namespace Start prepares for Keyturn.
const Namespace = "keyturn"

// Server is a running temporal-server process.
type Server struct {
	addr string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

// FrontendAddr is the frontend's host:port.
func (s *Server) FrontendAddr() string { return s.addr }

// Namespace is the namespace prepared for Keyturn.
func (s *Server) Namespace() string { return Namespace }

// Start starts PostgreSQL and a temporal-server on it, creates Keyturn's namespace and
// those of extraNamespaces with Keyturn's search attributes (as `keyturn setup
// --create-namespace` does), and stops both when the test ends. A missing binary skips
// the test, or fails it under CI=true.
func Start(t testing.TB, logger *slog.Logger, extraNamespaces ...string) *Server {
	t.Helper()
	server, err := testdeps.Tool("temporal-server")
	if err == nil {
		_, err = testdeps.Tool("temporal-sql-tool")
	}
	if err != nil {
		if testdeps.InCI() {
			t.Fatalf("temporalpg: %v", err)
		}
		t.Skipf("temporalpg: %v (set CI=true to make this a failure)", err)
	}
	sqlTool, _ := testdeps.Tool("temporal-sql-tool")
	root, _ := testdeps.RepoRoot()

	// Durable, as production's database is (the test clusters run with fsync off).
	pg := pgtest.ForTestWith(t, pgtest.Options{Settings: map[string]string{"fsync": "on", "max_connections": "200"}})
	dbEnv := []string{
		"SQL_PLUGIN=postgres12", "SQL_HOST=" + pg.Host, "SQL_PORT=" + strconv.Itoa(pg.Port),
		"SQL_USER=" + pg.SuperUser, "SQL_PASSWORD=" + pg.SuperPassword.Reveal(),
	}
	// The databases deploy/compose's temporal-db makes, then its temporal-schema steps.
	steps := [][]string{
		{"--db", "temporal", "create-database"},
		{"--db", "temporal_visibility", "create-database"},
		{"--db", "temporal", "setup-schema", "-v", "0.0"},
		{"--db", "temporal", "update-schema", "--schema-name", "postgresql/v12/temporal"},
		{"--db", "temporal_visibility", "setup-schema", "-v", "0.0"},
		{"--db", "temporal_visibility", "update-schema", "--schema-name", "postgresql/v12/visibility"},
	}
	for _, args := range steps {
		cmd := exec.Command(sqlTool, args...)
		cmd.Env = append(os.Environ(), dbEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("temporalpg: temporal-sql-tool %v: %v\n%s", args, err, out)
		}
	}

	ports, taken := map[string]int{}, map[int]bool{}
	for _, name := range []string{"FRONTEND_GRPC_PORT", "FRONTEND_HTTP_PORT", "FRONTEND_MEMBERSHIP_PORT",
		"INTERNAL_FRONTEND_HTTP_PORT", "HISTORY_GRPC_PORT", "HISTORY_MEMBERSHIP_PORT",
		"MATCHING_GRPC_PORT", "MATCHING_MEMBERSHIP_PORT", "WORKER_GRPC_PORT", "WORKER_MEMBERSHIP_PORT"} {
		p, err := lowFreePort()
		for err == nil && taken[p] { // free, but already given to another service
			p, err = lowFreePort()
		}
		if err != nil {
			t.Fatalf("temporalpg: %v", err)
		}
		ports[name], taken[p] = p, true
	}
	env := append(os.Environ(),
		"DB=postgres12", "POSTGRES_SEEDS="+pg.Host, "DB_PORT="+strconv.Itoa(pg.Port),
		"POSTGRES_USER="+pg.SuperUser, "POSTGRES_PWD="+pg.SuperPassword.Reveal(),
		"BIND_ON_IP=127.0.0.1", "LOG_LEVEL=warn",
		"DYNAMIC_CONFIG_FILE_PATH="+filepath.Join(root, "deploy", "compose", "temporal-dynamicconfig.yaml"))
	for name, p := range ports {
		env = append(env, name+"="+strconv.Itoa(p))
	}
	s := &Server{addr: "127.0.0.1:" + strconv.Itoa(ports["FRONTEND_GRPC_PORT"]), log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	s.cmd = exec.Command(server, "start")
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.writer(), s.writer()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("temporalpg: start temporal-server: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = s.Stop() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := s.dial(ctx, logger)
	if err != nil {
		t.Fatalf("temporalpg: %v\n%s", err, s.tail())
	}
	defer c.Close()
	want := workflows.SearchAttributes()
	for _, ns := range append([]string{Namespace}, extraNamespaces...) {
		if _, err := setup.Apply(ctx, c, s.addr, ns, want, setup.Options{CreateNamespace: true, Retention: 24 * time.Hour, Wait: time.Minute}); err != nil {
			t.Fatalf("temporalpg: prepare namespace %s: %v\n%s", ns, err, s.tail())
		}
	}
	return s
}

// lowFreePort returns a free loopback port below 32768: Temporal keeps its members'
// ports in a PostgreSQL smallint column (cluster_membership.rpc_port), so a port the
// kernel picks from its ephemeral range (32768 and up) fails the server's start.
func lowFreePort() (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			_ = l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port between 20000 and 32000")
}

// dial waits until the frontend answers a health check.
func (s *Server) dial(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	for {
		c, err := client.Dial(client.Options{HostPort: s.addr, Namespace: Namespace, Logger: log.NewStructuredLogger(logger)})
		if err == nil {
			if _, err = c.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
				return c, nil
			}
			c.Close()
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("temporal-server exited before it answered")
		case <-ctx.Done():
			return nil, fmt.Errorf("temporal-server at %s did not answer: %v", s.addr, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Stop ends the server: SIGINT, then SIGKILL after 20 s. Stopping it again does
// nothing; the test's cleanup stops it too.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

func (s *Server) writer() lockedWriter { return lockedWriter{s} }

// tail is the end of the server's output, for a failure message.
func (s *Server) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.log.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
