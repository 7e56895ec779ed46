package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPgBouncerFollowsPasswordChanges proves what rotation through PgBouncer rests on:
// PgBouncer checks each new client against the server's current verifier (auth_query),
// so after a password change the new password logs in and the old one is refused at once,
// and a role disabled the way Keyturn revokes (NOLOGIN, PASSWORD NULL) is refused too.
func TestPgBouncerFollowsPasswordChanges(t *testing.T) {
	c := Need(t, cluster)
	ctx := t.Context()
	super, err := connect(t, c.SuperDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())
	if _, err := super.Exec(ctx, `DROP DATABASE IF EXISTS bouncer_db`); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, `CREATE DATABASE bouncer_db`); err != nil {
		t.Fatal(err)
	}
	setPassword := func(password string) {
		t.Helper()
		if _, err := super.Exec(ctx, fmt.Sprintf(`ALTER ROLE bouncer_user WITH LOGIN PASSWORD '%s'`, password)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := super.Exec(ctx, `DROP ROLE IF EXISTS bouncer_user`); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, `CREATE ROLE bouncer_user LOGIN`); err != nil {
		t.Fatal(err)
	}
	setPassword("first-password")

	// Idle server connections close after a second, so that each login below makes
	// PgBouncer log in to the server anew with the keys of the client's SCRAM exchange.
	b := PgBouncerForTest(t, c, BouncerOptions{Databases: []string{"bouncer_db"}, Settings: map[string]string{"server_idle_timeout": "1"}})
	if !strings.Contains(b.Config, "auth_type = scram-sha-256") || !strings.Contains(b.Config, "pool_mode = transaction") {
		t.Fatalf("pgbouncer.ini lacks scram-sha-256 or transaction pooling:\n%s", b.Config)
	}
	login := func(password string) error {
		t.Helper()
		cfg, err := pgx.ParseConfig(b.DSN("bouncer_user", password, "bouncer_db"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var user string
		if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
			return err
		}
		if user != "bouncer_user" {
			t.Fatalf("logged in as %q through PgBouncer, want bouncer_user", user)
		}
		return nil
	}
	refused := func(what string, err error) {
		t.Helper()
		var pe *pgconn.PgError
		if err == nil {
			t.Fatalf("%s: PgBouncer let the client in", what)
		}
		if !errors.As(err, &pe) || (pe.Code != "28P01" && pe.Code != "08P01") {
			t.Errorf("%s: refused with %v, want SQLSTATE 28P01 or 08P01", what, err)
		}
	}
	// serverIdle waits until PgBouncer has closed its server connections of the role.
	serverIdle := func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var n int
			if err := super.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = 'bouncer_user'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("PgBouncer still holds %d server connections of bouncer_user", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if err := login("first-password"); err != nil {
		t.Fatalf("login through PgBouncer with the password: %v", err)
	}
	serverIdle()
	setPassword("second-password")
	if err := login("second-password"); err != nil {
		t.Fatalf("login through PgBouncer with the changed password: %v", err)
	}
	refused("old password after the change", login("first-password"))

	serverIdle()
	if _, err := super.Exec(ctx, `ALTER ROLE bouncer_user WITH NOLOGIN PASSWORD NULL`); err != nil {
		t.Fatal(err)
	}
	refused("password of a revoked role", login("second-password"))
	setPassword("third-password")
	if err := login("third-password"); err != nil {
		t.Fatalf("login through PgBouncer after re-keying a revoked role: %v", err)
	}
}
