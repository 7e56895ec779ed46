package pgxconsumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// cluster is the package's scram-sha-256 server.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cluster, pgtest.Options{})) }

var seq atomic.Int64

// fixture is a file store the worker writes, a cache reading it, and a login role.
type fixture struct {
	st      stores.Store
	cache   *consumer.Cache
	id      secret.ID
	role    string
	super   *pgx.Conn
	retries atomic.Int64
	hook    *Hook

	mu        sync.Mutex
	retryErrs []string // what OnRetry was given, %+v, to scan for passwords
}

// noPasswordInRetries fails the test when an error OnRetry received holds a password.
func (f *fixture) noPasswordInRetries(t *testing.T, passwords ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, msg := range f.retryErrs {
		for _, pw := range passwords {
			if strings.Contains(msg, pw) {
				t.Fatal("an error given to OnRetry holds a password")
			}
		}
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := pgtest.Need(t, cluster)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := consumer.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A TTL far longer than the test: only Invalidate makes the cache read again.
	cache, err := consumer.New(src, consumer.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	super, err := pgx.Connect(t.Context(), c.SuperDSN())
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	t.Cleanup(func() { super.Close(context.Background()) })
	n := seq.Add(1)
	f := &fixture{st: st, cache: cache, id: secret.ID(fmt.Sprintf("prod/orders-db/app%d", n)),
		role: fmt.Sprintf("app_%d", n), super: super}
	f.hook = New(cache, f.id, Options{OnRetry: func(id secret.ID, err error) {
		if id != f.id || !strings.Contains(err.Error(), "28P01") {
			t.Errorf("OnRetry(%s, %v): want %s and a 28P01 refusal", id, err, f.id)
		}
		f.mu.Lock()
		f.retryErrs = append(f.retryErrs, fmt.Sprintf("%v %+v %#v", err, err, err))
		f.mu.Unlock()
		f.retries.Add(1)
	}})
	f.exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN", pgx.Identifier{f.role}.Sanitize()))
	return f
}

func (f *fixture) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := f.super.Exec(t.Context(), sql); err != nil {
		// The statement may hold a password: report that it failed, not what it was.
		t.Fatalf("superuser statement failed: %v", err)
	}
}

// setPassword changes the role's password on the server, as a rotation's apply does.
func (f *fixture) setPassword(t *testing.T, role, password string) {
	t.Helper()
	f.exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), password))
}

// promote stages a version and promotes it, as the worker does, without touching the
// consumer's cache.
func (f *fixture) promote(t *testing.T, token string, meta map[string]string, password string) {
	t.Helper()
	_, err := f.st.StagePending(t.Context(), stores.StageRequest{
		SecretID: f.id,
		Token:    secret.VersionToken(token),
		Material: secret.Material{FieldPassword: secret.NewSensitive(password)},
		Metadata: meta,
	})
	if err != nil {
		t.Fatalf("StagePending %s: %v", token, err)
	}
	if err := f.st.Promote(t.Context(), f.id, secret.VersionToken(token)); err != nil {
		t.Fatalf("Promote %s: %v", token, err)
	}
}

// password returns a fresh password, unique to the test so it can be looked for.
func password(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "pgxconsumer-canary-" + hex.EncodeToString(b)
}

// poolConfig is a pool for the cluster whose DSN names another user and no password:
// the login must come from the secret.
func poolConfig(t *testing.T) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(cluster.DSN("not_the_user", "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func currentUser(t *testing.T, p *Pool) string {
	t.Helper()
	var user string
	if err := p.QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatalf("SELECT current_user: %v", err)
	}
	return user
}

func TestPoolRetriesOnceWhenThePasswordChangedUnderTheCache(t *testing.T) {
	f := newFixture(t)
	v1, v2 := password(t), password(t)
	f.setPassword(t, f.role, v1)
	f.promote(t, "v1", map[string]string{MetadataUsername: f.role, MetadataRole: f.role}, v1)

	pool, err := NewPool(t.Context(), poolConfig(t), f.hook)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := currentUser(t, pool); got != f.role {
		t.Fatalf("logged in as %q, want %q from the secret's metadata", got, f.role)
	}
	if n := f.retries.Load(); n != 0 {
		t.Fatalf("%d retries with the right password, want 0", n)
	}

	// The rotation changes the server's password and promotes v2; the cache still holds
	// v1 for an hour.
	f.setPassword(t, f.role, v2)
	f.promote(t, "v2", map[string]string{MetadataUsername: f.role, MetadataRole: f.role}, v2)
	pool.Reset() // the next operation needs a new connection

	if _, err := pool.Exec(t.Context(), "SELECT 1"); err != nil {
		t.Fatalf("Exec after the password changed: %v", err)
	}
	if n := f.retries.Load(); n != 1 {
		t.Fatalf("%d retries, want exactly 1", n)
	}
	v, err := f.cache.Get(t.Context(), f.id)
	if err != nil || v.Version.Token != "v2" {
		t.Fatalf("cache after the retry holds %q (%v), want v2", v.Version.Token, err)
	}

	// Every retrying operation, not only Exec: QueryRow, Query, Begin, SendBatch.
	v3 := password(t)
	f.setPassword(t, f.role, v3)
	f.promote(t, "v3", map[string]string{MetadataUsername: f.role}, v3)
	pool.Reset()
	if got := currentUser(t, pool); got != f.role {
		t.Fatalf("QueryRow after the third password: logged in as %q", got)
	}
	if n := f.retries.Load(); n != 2 {
		t.Fatalf("%d retries after QueryRow, want 2", n)
	}
	v4 := password(t)
	f.setPassword(t, f.role, v4)
	f.promote(t, "v4", map[string]string{MetadataUsername: f.role}, v4)
	pool.Reset()
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	br := pool.SendBatch(t.Context(), b)
	if _, err := br.Exec(); err != nil {
		t.Fatalf("SendBatch after the fourth password: %v", err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if n := f.retries.Load(); n != 3 {
		t.Fatalf("%d retries after SendBatch, want 3", n)
	}
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after the batch closed", st.AcquiredConns())
	}
	used := []string{v1, v2, v3, v4}

	// The other retrying operations, each on a password changed under the cache.
	ops := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"Query", func(ctx context.Context) error {
			rows, err := pool.Query(ctx, "SELECT 1")
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}},
		{"Begin", func(ctx context.Context) error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return err
			}
			return tx.Rollback(ctx)
		}},
		{"BeginTx", func(ctx context.Context) error {
			tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
			if err != nil {
				return err
			}
			return tx.Rollback(ctx)
		}},
		{"CopyFrom", func(ctx context.Context) error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"pg_temp", "never"}, []string{"x"}, pgx.CopyFromRows(nil))
			// The table does not exist: the point is that the connect got through.
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42P01" {
				return nil
			}
			return err
		}},
		{"Ping", pool.Ping},
		{"AcquireFunc", func(ctx context.Context) error {
			return pool.AcquireFunc(ctx, func(*pgxpool.Conn) error { return nil })
		}},
	}
	for i, op := range ops {
		pw := password(t)
		used = append(used, pw)
		f.setPassword(t, f.role, pw)
		f.promote(t, fmt.Sprintf("op%d", i), map[string]string{MetadataUsername: f.role}, pw)
		pool.Reset()
		before := f.retries.Load()
		if err := op.run(t.Context()); err != nil {
			t.Fatalf("%s after the password changed: %v", op.name, err)
		}
		if n := f.retries.Load() - before; n != 1 {
			t.Fatalf("%s: %d retries, want 1", op.name, n)
		}
	}
	f.noPasswordInRetries(t, used...)
}

func TestAPasswordThatStaysWrongFailsAfterOneRetryWithoutMaterial(t *testing.T) {
	f := newFixture(t)
	right, wrong := password(t), password(t)
	f.setPassword(t, f.role, right)
	f.promote(t, "v1", map[string]string{MetadataUsername: f.role}, wrong)

	check := func(what string, err error, wantRetries int64) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s with a wrong password succeeded", what)
		}
		if n := f.retries.Load(); n != wantRetries {
			t.Fatalf("%s: %d retries, want %d", what, n, wantRetries)
		}
		msg := fmt.Sprintf("%v %+v %#v", err, err, err)
		if strings.Contains(msg, wrong) || strings.Contains(msg, right) {
			t.Fatalf("%s: the error holds a password", what)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != codeInvalidPassword {
			t.Fatalf("%s: error %v is not a 28P01 PgError", what, err)
		}
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) && ce.Config.Password != "" {
			t.Fatalf("%s: the connect error's config still holds the password", what)
		}
		if !strings.Contains(err.Error(), string(f.id)) || !strings.Contains(err.Error(), "read fresh") {
			t.Fatalf("%s: error %q does not name the secret and the fresh read", what, err)
		}
	}

	cfg, err := pgx.ParseConfig(cluster.DSN("not_the_user", "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.hook.Connect(t.Context(), cfg)
	check("Connect", err, 1)
	if cfg.Password != "" || cfg.User != "not_the_user" {
		t.Fatal("Connect modified the caller's config")
	}

	pool, err := NewPool(t.Context(), poolConfig(t), f.hook)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(t.Context(), "SELECT 1")
	check("Pool.Exec", err, 2)
	f.noPasswordInRetries(t, right, wrong)
}

func TestConnectLogsInAsTheRoleWhenNoUsernameIsGiven(t *testing.T) {
	// The alternating strategy's twins: the version names the role its password is for.
	f := newFixture(t)
	twin := f.role + "_b"
	f.exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN", pgx.Identifier{twin}.Sanitize()))
	pw := password(t)
	f.setPassword(t, twin, pw)
	f.promote(t, "v1", map[string]string{MetadataRole: twin}, pw)

	cfg, err := pgx.ParseConfig(cluster.DSN(f.role, "", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := f.hook.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer conn.Close(context.Background())
	var user string
	if err := conn.QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != twin {
		t.Fatalf("logged in as %q, want the version's role %q", user, twin)
	}
	if n := f.retries.Load(); n != 0 {
		t.Fatalf("%d retries, want 0", n)
	}
}

func TestNamesMatchThePostgresRotator(t *testing.T) {
	if FieldPassword != postgres.FieldPassword || MetadataUsername != postgres.MetadataUsername ||
		MetadataRole != postgres.MetadataRole {
		t.Fatal("pgxconsumer's field or metadata names differ from rotators/postgres's")
	}
}
