package tests

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// keyturn runs one CLI command in process against the env and returns its exit code and
// combined output.
func keyturn(t *testing.T, env *testenv.Env, args ...string) (int, string) {
	t.Helper()
	return keyturnIn(t, env, "", args...)
}

// keyturnIn is keyturn with standard input.
func keyturnIn(t *testing.T, env *testenv.Env, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	full := append([]string{"--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(), "-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile,
		"--audit-dir", env.AuditDir, "--audit-signing-key", env.AuditKey}, args...)
	code := cli.Execute(ctx, full, strings.NewReader(stdin), &out, &out)
	return code, out.String()
}

// login tries the credential against the cluster over TCP with password auth.
func login(ctx context.Context, env *testenv.Env, user string, password secret.Sensitive) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=demo sslmode=disable connect_timeout=5", env.Cluster.Host, env.Cluster.Port, user))
	if err != nil {
		return err
	}
	cfg.Password = password.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// superExec runs SQL as the cluster's superuser.
func superExec(t *testing.T, env *testenv.Env, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn := superConn(t, env)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		// Not the statement: it may carry a verifier.
		t.Fatalf("superuser exec: %v", err)
	}
}

func superConn(t *testing.T, env *testenv.Env) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=demo sslmode=disable", env.Cluster.Host, env.Cluster.Port, env.Cluster.SuperUser))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = env.Cluster.SuperPassword.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	return conn
}

// holdRole takes a row lock on role in an open transaction of the superuser's, so that
// any ALTER ROLE on it (a containment's revoke) waits until release is called, or the
// test ends.
func holdRole(t *testing.T, env *testenv.Env, role string) (release func()) {
	t.Helper()
	ctx := context.Background()
	blocker := superConn(t, env)
	t.Cleanup(func() { _ = blocker.Close(ctx) })
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" CONNECTION LIMIT 50"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// current reads the secret's current version and material from the store.
func current(t *testing.T, env *testenv.Env, id secret.ID) (secret.Version, secret.Material) {
	t.Helper()
	v, m, err := env.Store.Read(context.Background(), id, secret.StageCurrent)
	if err != nil {
		t.Fatalf("read current %s: %v", id, err)
	}
	return v, m
}

// lockInactiveTwin holds a row lock on the twin app_b (creating it, NOLOGIN), so a
// rotation's Create that re-keys it blocks inside ALTER ROLE until release. It returns
// the connection holding the lock (its PID is what pg_blocking_pids names) and release,
// which is also called when the test ends, so a failed test never leaves a rotation
// blocked.
func lockInactiveTwin(t *testing.T, env *testenv.Env) (blocker *pgx.Conn, release func() error) {
	t.Helper()
	ctx := context.Background()
	superExec(t, env, "CREATE ROLE app_b NOLOGIN")
	blocker = superConn(t, env)
	t.Cleanup(func() { _ = blocker.Close(ctx) })
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `ALTER ROLE app_b CONNECTION LIMIT 50`); err != nil {
		t.Fatal(err)
	}
	return blocker, func() error { return tx.Rollback(ctx) }
}

// requireKept fails the test unless version v (material m) is still current and logs in,
// and no pending version is left: what a rollback must leave.
func requireKept(t *testing.T, env *testenv.Env, id secret.ID, v secret.Version, m secret.Material) {
	t.Helper()
	ctx := context.Background()
	if err := login(ctx, env, v.Metadata["role"], m.Get("password")); err != nil {
		t.Fatalf("the credential in use must still work: %v", err)
	}
	if cur, _ := current(t, env, id); cur.Token != v.Token {
		t.Fatalf("version %d must still be current", v.Number)
	}
	if p, _, err := env.Store.Read(ctx, id, secret.StagePending); err == nil {
		t.Errorf("the store still holds pending version %d after the rollback", p.Number)
	}
}
