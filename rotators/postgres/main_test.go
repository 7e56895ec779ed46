package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// cluster is the package's one throwaway server. It logs every statement, so tests can
// check that no password ever reached the server in the clear.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, &cluster, pgtest.Options{Settings: map[string]string{"log_statement": "all"}}))
}

// adminName is the least-privilege admin most tests use: LOGIN CREATEROLE, nothing else.
const adminName = "keyturn_admin"

var (
	seq         atomic.Int64
	adminOnce   sync.Once
	adminSecret secret.Sensitive
	adminErr    error
)

// unique returns a fresh name with the given prefix.
func unique(prefix string) string { return fmt.Sprintf("%s_%d", prefix, seq.Add(1)) }

// superConn connects as the bootstrap superuser for the length of the test.
func superConn(t *testing.T) *pgx.Conn {
	t.Helper()
	c := pgtest.Need(t, cluster)
	return connectDSN(t, c.SuperDSN())
}

func connectDSN(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// tryLogin logs in as user with password and runs SELECT 1.
func tryLogin(t *testing.T, user, password string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.DSN(user, password, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// serverVersion returns server_version_num.
func serverVersion(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var v int
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		t.Fatalf("server version: %v", err)
	}
	return v
}

// sharedAdmin creates keyturn_admin once for the whole package.
func sharedAdmin(t *testing.T) secret.Sensitive {
	t.Helper()
	super := superConn(t)
	adminOnce.Do(func() {
		password := newPassword()
		// A verifier, not the plaintext: the cluster logs every statement.
		v, err := newVerifier(password)
		if err != nil {
			adminErr = err
			return
		}
		_, adminErr = super.Exec(t.Context(), fmt.Sprintf("CREATE ROLE %s WITH LOGIN CREATEROLE PASSWORD %s", ident(adminName), quoteLiteral(v.text)))
		adminSecret = secret.NewSensitive(password)
	})
	if adminErr != nil {
		t.Fatalf("create %s: %v", adminName, adminErr)
	}
	return adminSecret
}

// createAdmin creates a dedicated admin role with the given attributes and grants.
func createAdmin(t *testing.T, attrs string, grants ...string) (string, secret.Sensitive) {
	t.Helper()
	super := superConn(t)
	name, password := unique("admin"), newPassword()
	v, err := newVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH LOGIN %s PASSWORD %s", ident(name), attrs, quoteLiteral(v.text)))
	for _, g := range grants {
		exec(t, super, fmt.Sprintf("GRANT %s TO %s", ident(g), ident(name)))
	}
	return name, secret.NewSensitive(password)
}

// newConfig creates a fresh managed role, NOLOGIN, and returns a Config that manages it
// with the shared least-privilege admin.
func newConfig(t *testing.T, strategy string) Config {
	t.Helper()
	c := pgtest.Need(t, cluster)
	super := superConn(t)
	role := unique("app")
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH NOLOGIN", ident(role)))
	cfg := Config{
		Host:          c.Host,
		Port:          c.Port,
		SSLMode:       "disable",
		Role:          role,
		Strategy:      strategy,
		AdminUser:     adminName,
		AdminPassword: sharedAdmin(t),
	}
	if serverVersion(t, super) >= 160000 {
		// From PostgreSQL 16, CREATEROLE only reaches roles held WITH ADMIN OPTION (see
		// the package documentation).
		exec(t, super, fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE", ident(role), ident(adminName)))
	}
	return cfg
}

func mustNew(t *testing.T, cfg Config) *Rotator {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// step drives a rotator by hand, the way the workflow does, numbering versions.
type step struct {
	t *testing.T
	r *Rotator
	n int
}

func (s *step) generate(current *secret.Version) (secret.Version, secret.Material) {
	s.t.Helper()
	s.n++
	token := secret.VersionToken(fmt.Sprintf("test/%d", s.n))
	g, err := s.r.Generate(s.t.Context(), rotators.GenerateRequest{SecretID: "test/pg", Token: token, Current: current})
	if err != nil {
		s.t.Fatalf("Generate: %v", err)
	}
	return secret.Version{SecretID: "test/pg", Token: token, Number: s.n, CreatedAt: time.Now(), Metadata: g.Metadata}, g.Material
}

func (s *step) apply(v secret.Version, m secret.Material) {
	s.t.Helper()
	if err := s.r.Apply(s.t.Context(), rotators.ApplyRequest{Version: v, Material: m}); err != nil {
		s.t.Fatalf("Apply %s: %v", v.Token, err)
	}
}

func (s *step) rotate(current *secret.Version) (secret.Version, secret.Material) {
	s.t.Helper()
	v, m := s.generate(current)
	s.apply(v, m)
	if err := s.r.Test(s.t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		s.t.Fatalf("Test %s: %v", v.Token, err)
	}
	return v, m
}

func (s *step) revoke(v secret.Version, keep *secret.Version) error {
	return s.r.Revoke(s.t.Context(), rotators.RevokeRequest{Version: v, Keep: keep})
}

// wantSQLState checks that err is a server error with the given code.
func wantSQLState(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Fatalf("got %v, want SQLSTATE %s", err, code)
	}
}

// wantNoSecrets fails if an error's text holds a password or any SCRAM verifier.
func wantNoSecrets(t *testing.T, err error, passwords ...string) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	if strings.Contains(text, "SCRAM-SHA-256$") {
		t.Errorf("error holds a SCRAM verifier: %s", text)
	}
	for _, p := range passwords {
		if p != "" && strings.Contains(text, p) {
			t.Errorf("error holds a password")
		}
	}
}

// wantNotInServerLog fails if any of the passwords appears in the server log.
func wantNotInServerLog(t *testing.T, passwords []string) {
	t.Helper()
	log, err := cluster.ServerLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range passwords {
		if strings.Contains(log, p) {
			t.Errorf("a generated password appears in the server log in the clear")
		}
	}
}
