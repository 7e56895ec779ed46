// Package mariadbtest gives tests throwaway MariaDB servers started from the machine's
// binaries (mariadb-install-db, then mariadbd as the mysql OS user, which it insists on),
// each on a free loopback port with its general log on, so tests can read every
// statement the server received. A missing server follows the harnesses' rule (package
// testdeps): outside CI a test that needs one is skipped with the reason, under CI=true
// it fails.
package mariadbtest

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/keyturn/keyturn/internal/harness/testcerts"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/loopback"
)

// ErrUnavailable reports that the MariaDB server binaries, or the mysql OS user, are
// missing on this machine.
var ErrUnavailable = errors.New("mariadbd, mariadb-install-db or the mysql OS user not found (install Debian's mariadb-server package)")

// Server is one running throwaway server. Its root account on 127.0.0.1 has no password;
// tests use it as the superuser that sets the scene.
type Server struct {
	// Host and Port locate the server on loopback.
	Host string
	Port int
	// Dir holds its data, socket and logs.
	Dir string
	// CAPEM is the CA certificate of a TLS server's certificate (StartTLS); nil for a
	// plain one.
	CAPEM []byte
	tls   *tls.Config
	cmd   *exec.Cmd
	mu    sync.Mutex
	// stopped says Stop ran.
	stopped bool
}

// Start installs and starts a server in a new temporary directory; the caller must call
// Stop. It takes about two seconds.
func Start() (*Server, error) { return start(false) }

// StartTLS is Start for a server that refuses connections without TLS
// (require_secure_transport), with a certificate for 127.0.0.1 and localhost signed by a
// CA of its own (CAPEM).
func StartTLS() (*Server, error) { return start(true) }

func start(withTLS bool) (*Server, error) {
	installDB, err1 := exec.LookPath("mariadb-install-db")
	daemon, err2 := findDaemon()
	owner, err3 := user.Lookup("mysql")
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ErrUnavailable
	}
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("give %s to the mysql user: %w", dir, err)
	}
	out, err := exec.Command(installDB, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=mysql",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	port, err := loopback.FreePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Port: port, Dir: dir}
	args := []string{"-u", "mysql", "--", daemon, "--no-defaults",
		"--datadir=" + filepath.Join(dir, "data"), "--socket=" + filepath.Join(dir, "sock"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(dir, "pid"), "--log-error=" + filepath.Join(dir, "error.log"),
		"--general-log=1", "--general-log-file=" + filepath.Join(dir, "general.log")}
	if withTLS {
		set, err := testcerts.New()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		ca, cert, key, err := set.Write(dir, uid, gid)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.CAPEM = set.CAPEM
		s.tls = &tls.Config{RootCAs: set.Roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		args = append(args, "--ssl-ca="+ca, "--ssl-cert="+cert, "--ssl-key="+key, "--require-secure-transport=ON")
	}
	s.cmd = exec.Command("runuser", args...)
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.Exec(ctx, "DROP USER IF EXISTS ''@'localhost'")
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			_ = s.Stop()
			return nil, fmt.Errorf("mariadbd on port %d did not answer within 30s: %w", port, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func findDaemon() (string, error) {
	for _, name := range []string{"mariadbd", "/usr/sbin/mariadbd"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrUnavailable
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Open returns a database handle logged in as user with password, or as root when user
// is empty.
func (s *Server) Open(user, password string) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	if user == "" {
		cfg.User = "root"
	}
	cfg.Net, cfg.Addr = "tcp", s.Addr()
	cfg.Timeout = 5 * time.Second
	cfg.TLS = s.tls
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		panic(err) // the configuration is built here and always valid
	}
	return sql.OpenDB(connector)
}

// Exec runs statements as root, one by one.
func (s *Server) Exec(ctx context.Context, statements ...string) error {
	db := s.Open("", "")
	defer db.Close()
	for _, st := range statements {
		if _, err := db.ExecContext(ctx, st); err != nil {
			// Statements can hold passwords, and so can errors quoting them: name the
			// statement by its first words and the error by its number.
			var me *mysql.MySQLError
			if errors.As(err, &me) {
				return fmt.Errorf("%s...: MariaDB error %d", firstWords(st), me.Number)
			}
			return fmt.Errorf("%s...: %w", firstWords(st), err)
		}
	}
	return nil
}

func firstWords(st string) string {
	w := strings.Fields(st)
	return strings.Join(w[:min(3, len(w))], " ")
}

// GeneralLog returns the text of the server's general log: every statement it received.
func (s *Server) GeneralLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "general.log"))
	return string(b)
}

// ErrorLogTail returns the end of the server's error log.
func (s *Server) ErrorLogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
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
		// runuser does not pass signals on: end mariadbd itself, by its pid file
		// (SIGTERM is a clean shutdown), and runuser ends with it.
		pid := s.daemonPID()
		if pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		} else {
			// No pid file yet (a server stuck starting): end it by its data directory.
			_ = exec.Command("pkill", "-KILL", "-f", "--", "--datadir="+filepath.Join(s.Dir, "data")).Run()
			_ = s.cmd.Process.Kill()
		}
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	return os.RemoveAll(s.Dir)
}

// daemonPID reads mariadbd's pid file; 0 when there is none.
func (s *Server) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(s.Dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

var unavailable testdeps.Missing

// Main runs a package's tests against one shared server. Call it from TestMain:
//
//	var server *mariadbtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &server)) }
//
// and begin each test that needs it with `s := mariadbtest.Need(t, server)`.
func Main(m *testing.M, server **Server) int {
	s, err := Start()
	switch {
	case errors.Is(err, ErrUnavailable) && !testdeps.InCI():
		unavailable.Record(err.Error())
		fmt.Fprintf(os.Stderr, "mariadbtest: tests that need MariaDB will be skipped: %v\n", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "mariadbtest: %v\n", err)
		return 1
	}
	*server = s
	code := m.Run()
	if s != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "mariadbtest: error log (tail):\n%s\n", s.ErrorLogTail())
		}
		if err := s.Stop(); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "mariadbtest: %v\n", err)
			code = 1
		}
	}
	*server = nil
	return code
}

// Need returns the server Main started, or skips the test with the reason it is missing.
func Need(t testing.TB, s *Server) *Server {
	t.Helper()
	if s != nil {
		return s
	}
	unavailable.Skip(t, "mariadbtest")
	return nil
}

// AdminPrivileges are the least the rotator's admin needs on MariaDB 10.11, besides
// the managed role WITH ADMIN OPTION: create, change and lock accounts, see and end
// other accounts' connections. docs/kinds/mariadb.md lists the same.
var AdminPrivileges = []string{"CREATE USER", "PROCESS", "CONNECTION ADMIN"}

// CreateAdmin creates the admin account user@'%' with password, AdminPrivileges and
// each of roles WITH ADMIN OPTION.
func (s *Server) CreateAdmin(ctx context.Context, user, password string, roles ...string) error {
	stmts := []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT %s ON *.* TO '%s'@'%%'", strings.Join(AdminPrivileges, ", "), user),
	}
	for _, r := range roles {
		stmts = append(stmts, fmt.Sprintf("GRANT `%s` TO '%s'@'%%' WITH ADMIN OPTION", r, user))
	}
	return s.Exec(ctx, stmts...)
}
