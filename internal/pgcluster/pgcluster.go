// Package pgcluster starts throwaway PostgreSQL clusters: scram-sha-256 authentication
// for every connection, a free port of 127.0.0.1, a temporary directory that Stop removes,
// and a watchdog that stops the server if the process that started it dies. `keyturn dev`
// runs its demo database on one, and the tests theirs (through internal/harness/pgtest):
// the server on 127.0.0.1:5432 of a development machine trusts every login, so a test
// against it would pass whether a rotated password works or not.
package pgcluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/loopback"
	"github.com/keyturn/keyturn/secret"
)

// ErrUnavailable reports that no PostgreSQL server binaries were found on this machine.
var ErrUnavailable = errors.New("pgcluster: PostgreSQL server binaries not found")

// fallbackBinDir is where Debian's postgresql-15 package puts the server binaries; it is
// tried when pg_config is not on PATH (pg_config ships in a separate dev package).
const fallbackBinDir = "/usr/lib/postgresql/15/bin"

// superUser is the bootstrap superuser initdb creates.
const superUser = "postgres"

// osUser runs the server when this process is root: initdb and pg_ctl refuse root.
const osUser = "postgres"

// Options adjust a cluster. The zero value is ready to use.
type Options struct {
	// Settings are extra server parameters passed as "-c name=value", for example
	// {"log_statement": "all"} to let a test scan the server log for leaked secrets.
	Settings map[string]string
	// StartTimeout bounds initdb plus server start. Zero means one minute.
	StartTimeout time.Duration
}

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	// Host is the address the server listens on, always 127.0.0.1.
	Host string
	// Port is the TCP port the server listens on.
	Port int
	// SuperUser is the bootstrap superuser's name.
	SuperUser string
	// SuperPassword is the bootstrap superuser's password.
	SuperPassword secret.Sensitive

	binDir  string
	root    string // temporary directory holding data, socket, log
	runAs   []string
	watcher *watchdog
}

// BinDir returns the directory holding the server binaries: `pg_config --bindir` if that
// works, else the Debian location of PostgreSQL 15. It returns ErrUnavailable when neither
// holds initdb, pg_ctl and postgres.
func BinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	candidates = append(candidates, fallbackBinDir)
	for _, dir := range candidates {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s; install postgresql-15)", ErrUnavailable, strings.Join(candidates, ", "))
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() {
			return false
		}
	}
	return true
}

// Start initialises and starts a new cluster. The caller must call Stop.
func Start(opts Options) (*Cluster, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	c := &Cluster{Host: "127.0.0.1", SuperUser: superUser, binDir: binDir}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root, so both run as the postgres OS user,
		// which must then own every file of the cluster.
		c.runAs = []string{"runuser", "-u", osUser, "--"}
	}
	if err := c.initdb(timeout); err != nil {
		c.removeDir()
		return nil, err
	}
	// Another test binary may take the port between our probe and the server's bind, so
	// try a few ports before giving up.
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		if startErr = c.start(opts, timeout); startErr == nil {
			return c, nil
		}
	}
	c.removeDir()
	return nil, startErr
}

// initdb creates the temporary directory and the cluster inside it.
func (c *Cluster) initdb(timeout time.Duration) error {
	root, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		return fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	c.root = root
	if c.runAs != nil {
		if err := ChownToOSUser(root); err != nil {
			return err
		}
	}
	password, err := RandomPassword()
	if err != nil {
		return err
	}
	c.SuperPassword = secret.NewSensitive(password)
	// The password goes through a file, never a command line, where ps would show it.
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgcluster: write password file: %w", err)
	}
	defer os.Remove(pwfile)
	if c.runAs != nil {
		if err := ChownToOSUser(pwfile); err != nil {
			return err
		}
	}
	// The watchdog is armed before the first server could exist, so a test binary that
	// dies at any point after this still leaves nothing running.
	w, err := startWatchdog(c)
	if err != nil {
		return err
	}
	c.watcher = w
	out, err := c.run(timeout, filepath.Join(c.binDir, "initdb"),
		"-D", c.dataDir(), "--auth=scram-sha-256", "--pwfile="+pwfile, "-U", superUser,
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %w\n%s", err, out)
	}
	return nil
}

// start picks a free port and starts the server on it, waiting until it accepts
// connections.
func (c *Cluster) start(opts Options, timeout time.Duration) error {
	port, err := loopback.FreePort()
	if err != nil {
		return err
	}
	args := []string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(port),
		"-k " + c.root,
		"-c fsync=off",
		"-c max_connections=300",
	}
	names := make([]string, 0, len(opts.Settings))
	for name := range opts.Settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		// pg_ctl hands -o to a shell, so quote each value for it.
		args = append(args, "-c "+name+"="+shellQuote(opts.Settings[name]))
	}
	out, err := c.run(timeout, filepath.Join(c.binDir, "pg_ctl"),
		"-D", c.dataDir(), "-l", c.logFile(), "-w", "-t", strconv.Itoa(int(timeout.Seconds())),
		"-o", strings.Join(args, " "), "start")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start on port %d: %w\n%s\nserver log:\n%s", port, err, out, c.LogTail())
	}
	c.Port = port
	return nil
}

// DSN returns a connection URL for the cluster over TCP without TLS. It holds the password
// in the clear: use it in tests only, never in an error message or a log.
func (c *Cluster) DSN(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SuperDSN returns DSN for the bootstrap superuser and database "postgres".
func (c *Cluster) SuperDSN() string {
	return c.DSN(c.SuperUser, c.SuperPassword.Reveal(), "postgres")
}

// ServerLog returns the server's log so far.
func (c *Cluster) ServerLog() (string, error) {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		return "", fmt.Errorf("pgcluster: read server log: %w", err)
	}
	return string(b), nil
}

// Stop stops the server at once (it holds nothing worth a clean shutdown) and removes the
// cluster's directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	if c == nil || c.root == "" {
		return nil
	}
	var errs []error
	if c.Port != 0 {
		out, err := c.run(time.Minute, filepath.Join(c.binDir, "pg_ctl"), "-D", c.dataDir(), "-m", "immediate", "-w", "stop")
		if err != nil {
			errs = append(errs, fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out))
		}
		c.Port = 0
	}
	if err := c.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Cluster) removeDir() error {
	if c.watcher != nil {
		c.watcher.fire()
		c.watcher = nil
	}
	if c.root == "" {
		return nil
	}
	root := c.root
	c.root = ""
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("pgcluster: remove %s: %w", root, err)
	}
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.root, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.root, "server.log") }

// LogTail is the end of the server's log, with every line that mentions a password
// hidden, for a failure message.
func (c *Cluster) LogTail() string {
	log, err := c.ServerLog()
	if err != nil {
		return err.Error()
	}
	if len(log) > 4000 {
		log = "..." + log[len(log)-4000:]
	}
	// Statements that set passwords stay out of test output, verifiers included.
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if strings.Contains(strings.ToUpper(l), "PASSWORD") {
			lines[i] = "[a statement with a password, hidden]"
		}
	}
	return strings.Join(lines, "\n")
}

// run runs a server binary, as the postgres OS user when we are root.
func (c *Cluster) run(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(append(append([]string{}, c.runAs...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The postgres OS user may not be allowed into our working directory.
	cmd.Dir = "/"
	// A child that keeps our pipes open must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	// If the test binary dies, stop the command too (runuser passes the signal on); the
	// watchdog cleans up whatever it had made.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	return cmd.CombinedOutput()
}

// ChownToOSUser hands a path to the postgres OS user.
func ChownToOSUser(path string) error {
	u, err := user.Lookup(osUser)
	if err != nil {
		return fmt.Errorf("pgcluster: running as root needs the %q OS user: %w", osUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("pgcluster: uid of %q: %w", osUser, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("pgcluster: gid of %q: %w", osUser, err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pgcluster: chown %s: %w", path, err)
	}
	return nil
}

// RandomPassword is a fresh random password for a cluster's own accounts.
func RandomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgcluster: generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RunAs is the command prefix that runs a program as the PostgreSQL OS user (when this
// process is root, which initdb and postgres refuse to be), or nil.
func (c *Cluster) RunAs() []string { return c.runAs }

// ConnectSuper connects to db as the cluster's superuser.
func (c *Cluster) ConnectSuper(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.Host, c.Port, c.SuperUser, db))
	if err != nil {
		return nil, err
	}
	cfg.Password = c.SuperPassword.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: connect as superuser to %s: %w", db, err)
	}
	return conn, nil
}
