package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/loopback"
	"github.com/keyturn/keyturn/internal/pgcluster"
)

// ErrNoPgBouncer reports that the pgbouncer program was not found on this machine.
var ErrNoPgBouncer = errors.New("pgtest: pgbouncer not found (install Debian's pgbouncer package)")

// pgbouncerPaths are where pgbouncer is looked for: PATH first, then where Debian's
// package installs it (/usr/sbin is not on every user's PATH).
var pgbouncerPaths = []string{"pgbouncer", "/usr/sbin/pgbouncer"}

// AuthUser is the role a PgBouncer started by StartPgBouncer logs in as to look up the
// password verifier of each client (auth_user), through AuthFunction.
const AuthUser = "pgbouncer_auth"

// AuthFunction is the SECURITY DEFINER function PgBouncer's auth_query calls, created in
// each database the pooler serves. It returns the SCRAM verifier of a role that may log in
// now (pg_shadow lists only roles with LOGIN; an expired VALID UNTIL counts as no
// password), so a role Keyturn revoked (NOLOGIN, PASSWORD NULL) is refused by the pooler
// as it is by the server.
const AuthFunction = "pgbouncer.user_lookup"

// BouncerOptions adjust StartPgBouncer.
type BouncerOptions struct {
	// Databases are the cluster's databases the pooler serves under the same name. At
	// least one is required: the auth function is created in each.
	Databases []string
	// PoolMode is session, transaction or statement; transaction when empty.
	PoolMode string
	// Settings are extra [pgbouncer] settings (server_lifetime, default_pool_size, ...),
	// overriding the defaults StartPgBouncer writes.
	Settings map[string]string
	// StartTimeout bounds setup plus start. Zero means 30 seconds.
	StartTimeout time.Duration
}

// Bouncer is a running throwaway PgBouncer in front of a Cluster, checking every client's
// password against the server's current SCRAM verifier (auth_type scram-sha-256 with
// auth_user and auth_query, no passwords in its userlist but the auth user's own).
type Bouncer struct {
	// Host is the address PgBouncer listens on, always 127.0.0.1.
	Host string
	// Port is the TCP port PgBouncer listens on.
	Port int
	// Config is the pgbouncer.ini it runs with; it holds no password (the auth user's is
	// in the userlist file beside it).
	Config string

	root string
	cmd  *exec.Cmd
	done chan struct{}
}

// PgBouncerPath returns the pgbouncer program to run, or ErrNoPgBouncer.
func PgBouncerPath() (string, error) {
	for _, p := range pgbouncerPaths {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", ErrNoPgBouncer
}

// StartPgBouncer prepares the cluster for PgBouncer's auth_query (the auth role and the
// lookup function, as the cluster's superuser; running it again is harmless) and starts a
// pgbouncer on a free port of 127.0.0.1, as the postgres OS user when we are root. The
// caller must call Stop.
func StartPgBouncer(c *Cluster, opts BouncerOptions) (*Bouncer, error) {
	bin, err := PgBouncerPath()
	if err != nil {
		return nil, err
	}
	if len(opts.Databases) == 0 {
		return nil, errors.New("pgtest: StartPgBouncer needs at least one database in BouncerOptions.Databases")
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	authPassword, err := pgcluster.RandomPassword()
	if err != nil {
		return nil, err
	}
	if err := prepareAuthQuery(ctx, c, opts.Databases, authPassword); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: create pgbouncer dir: %w", err)
	}
	b := &Bouncer{Host: "127.0.0.1", root: root}
	var startErr error
	// Another process may take the port between our probe and PgBouncer's bind.
	for attempt := 0; attempt < 3; attempt++ {
		if startErr = b.start(ctx, c, bin, opts, authPassword); startErr == nil {
			return b, nil
		}
	}
	_ = b.Stop()
	return nil, startErr
}

// prepareAuthQuery creates the auth role with password and, in each database, the lookup
// function PgBouncer's auth_query calls; only the auth role may execute it.
func prepareAuthQuery(ctx context.Context, c *Cluster, databases []string, password string) error {
	conn, err := c.ConnectSuper(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	role := pgx.Identifier{AuthUser}.Sanitize()
	// The server hashes the password (password_encryption is scram-sha-256 by default).
	// It travels as a bind parameter: a cluster started with log_statement=all logs it, so
	// do not run PgBouncer on one whose log a test scans for secrets. It is a throwaway
	// password of the test harness, never rotated material.
	if _, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$`, AuthUser, role)); err != nil {
		return fmt.Errorf("pgtest: create the pgbouncer auth role: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgtest: set the pgbouncer auth role's password: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT set_config('pgtest.auth_password', $1, true)`, password); err != nil {
		return fmt.Errorf("pgtest: set the pgbouncer auth role's password: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN EXECUTE format('ALTER ROLE %s WITH LOGIN PASSWORD %%L', current_setting('pgtest.auth_password')); END $$`, role)); err != nil {
		return fmt.Errorf("pgtest: set the pgbouncer auth role's password: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgtest: set the pgbouncer auth role's password: %w", err)
	}
	for _, db := range databases {
		dbConn, err := c.ConnectSuper(ctx, db)
		if err != nil {
			return err
		}
		for _, s := range []string{
			`CREATE SCHEMA IF NOT EXISTS pgbouncer`,
			`CREATE OR REPLACE FUNCTION ` + AuthFunction + `(p_username text, OUT username text, OUT password text)
			 RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $f$
			   SELECT usename::text, passwd::text FROM pg_catalog.pg_shadow
			   WHERE usename = p_username AND (valuntil IS NULL OR valuntil > now())
			 $f$`,
			`REVOKE ALL ON FUNCTION ` + AuthFunction + `(text) FROM PUBLIC`,
			fmt.Sprintf(`GRANT USAGE ON SCHEMA pgbouncer TO %s`, role),
			fmt.Sprintf(`GRANT EXECUTE ON FUNCTION %s(text) TO %s`, AuthFunction, role),
		} {
			if _, err := dbConn.Exec(ctx, s); err != nil {
				dbConn.Close(context.Background())
				return fmt.Errorf("pgtest: prepare pgbouncer's auth_query in %s: %w", db, err)
			}
		}
		dbConn.Close(context.Background())
	}
	return nil
}

// bouncerDefaults are the [pgbouncer] settings StartPgBouncer writes unless
// BouncerOptions.Settings overrides them.
func bouncerDefaults(root string, port int, poolMode string) map[string]string {
	return map[string]string{
		"listen_addr":     "127.0.0.1",
		"listen_port":     strconv.Itoa(port),
		"unix_socket_dir": "",
		"auth_type":       "scram-sha-256",
		"auth_file":       filepath.Join(root, "userlist.txt"),
		"auth_user":       AuthUser,
		"auth_query":      "SELECT username, password FROM " + AuthFunction + "($1)",
		"pool_mode":       poolMode,
		"logfile":         filepath.Join(root, "pgbouncer.log"),
		"pidfile":         filepath.Join(root, "pgbouncer.pid"),
		"max_client_conn": "500",
		// pgx sends these at startup; PgBouncer refuses unknown startup parameters.
		"ignore_startup_parameters": "extra_float_digits",
	}
}

// start writes the configuration for a free port and runs pgbouncer until it accepts
// connections.
func (b *Bouncer) start(ctx context.Context, c *Cluster, bin string, opts BouncerOptions, authPassword string) error {
	port, err := loopback.FreePort()
	if err != nil {
		return err
	}
	poolMode := opts.PoolMode
	if poolMode == "" {
		poolMode = "transaction"
	}
	settings := bouncerDefaults(b.root, port, poolMode)
	for k, v := range opts.Settings {
		settings[k] = v
	}
	var ini strings.Builder
	ini.WriteString("[databases]\n")
	for _, db := range opts.Databases {
		fmt.Fprintf(&ini, "%s = host=%s port=%d dbname=%s\n", db, c.Host, c.Port, db)
	}
	ini.WriteString("\n[pgbouncer]\n")
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&ini, "%s = %s\n", k, settings[k])
	}
	b.Config = ini.String()
	iniPath := filepath.Join(b.root, "pgbouncer.ini")
	// The userlist holds only the auth user's password, in the clear: PgBouncer needs it to
	// log in to the server for auth_query (a SCRAM verifier cannot log in by itself).
	userlist := fmt.Sprintf("%q %q\n", AuthUser, authPassword)
	for path, content := range map[string]string{iniPath: b.Config, settings["auth_file"]: userlist} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("pgtest: write %s: %w", filepath.Base(path), err)
		}
	}
	runAs := c.RunAs()
	if runAs != nil {
		for _, p := range []string{b.root, iniPath, settings["auth_file"]} {
			if err := pgcluster.ChownToOSUser(p); err != nil {
				return err
			}
		}
	}
	argv := append(append(append([]string{}, runAs...), bin), iniPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	// If the test binary dies, PgBouncer goes too (runuser passes the signal on).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start pgbouncer: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	addr := net.JoinHostPort(b.Host, strconv.Itoa(port))
	for {
		select {
		case <-done:
			b.cmd = nil
			return fmt.Errorf("pgtest: pgbouncer exited at start on port %d:\n%s", port, b.logTail())
		case <-ctx.Done():
			b.kill()
			return fmt.Errorf("pgtest: pgbouncer did not accept connections on port %d: %w\n%s", port, ctx.Err(), b.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			b.Port = port
			return nil
		}
	}
}

// DSN returns a connection URL through PgBouncer. Like Cluster.DSN it holds the password
// in the clear: tests only.
func (b *Bouncer) DSN(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(b.Host, strconv.Itoa(b.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Log returns PgBouncer's log so far.
func (b *Bouncer) Log() (string, error) {
	out, err := os.ReadFile(filepath.Join(b.root, "pgbouncer.log"))
	if err != nil {
		return "", fmt.Errorf("pgtest: read pgbouncer log: %w", err)
	}
	return string(out), nil
}

func (b *Bouncer) logTail() string {
	log, err := b.Log()
	if err != nil {
		return err.Error()
	}
	if len(log) > 4000 {
		log = "..." + log[len(log)-4000:]
	}
	return log
}

// kill stops the running pgbouncer and waits for it.
func (b *Bouncer) kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// Stop stops PgBouncer and removes its directory. It is safe to call more than once.
func (b *Bouncer) Stop() error {
	if b == nil {
		return nil
	}
	b.kill()
	if b.root == "" {
		return nil
	}
	root := b.root
	b.root = ""
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("pgtest: remove %s: %w", root, err)
	}
	return nil
}

// PgBouncerForTest starts a PgBouncer in front of c for one test and stops it when the test
// ends. It skips the test when pgbouncer is missing, except in CI, where it fails it.
func PgBouncerForTest(t testing.TB, c *Cluster, opts BouncerOptions) *Bouncer {
	t.Helper()
	b, err := StartPgBouncer(c, opts)
	if errors.Is(err, ErrNoPgBouncer) && !testdeps.InCI() {
		t.Skipf("skipping: %v (set CI=true to make this a failure)", err)
	}
	if err != nil {
		t.Fatalf("start PgBouncer: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PgBouncer log (tail):\n%s", b.logTail())
		}
		if err := b.Stop(); err != nil {
			t.Errorf("stop PgBouncer: %v", err)
		}
	})
	return b
}
