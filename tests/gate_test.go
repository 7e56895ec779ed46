package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestRevokeGateHoldsOnARealSession: a consumer keeps a session open with the old
// password after a rotation. The revoke gate sees it in pg_stat_activity, holds the
// revoke once max_wait has passed (the status names the session), and the old password
// keeps working; when the session closes the gate lets the revoke proceed, and the old
// password is refused.
func TestRevokeGateHoldsOnARealSession(t *testing.T) {
	const id = secret.ID("e2e/gated")
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{
		ID: id, Strategy: "alternating", Grace: "0s",
		RevokeGate: "{wait: until_unused, max_wait: 10s, then: hold, poll: 5s}",
	}}})
	ctx := context.Background()
	// The admin sees every session's details only with pg_read_all_stats; without it
	// the gate's check is refused (and the gate never takes that for idle).
	superExec(t, env, fmt.Sprintf("GRANT pg_read_all_stats TO %s", pgx.Identifier{env.Inventory.Secrets[0].Postgres.Admin.Username}.Sanitize()))

	// First rotation: nothing to revoke, so no gate.
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotate exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)
	old := v1.Metadata["role"]

	// A consumer that read the password once and keeps its connection.
	session := openSession(t, env, old, m1.Get("password"), "orders-api")

	run, held := rotateUntilHeld(t, env, id, "postgres")
	g := held.RevokeGate
	if held.Step != workflows.StepRevokeGate || g == nil || g.State != workflows.GateHeld || len(g.Uses) != 1 {
		t.Fatalf("held status %+v", held)
	}
	if u := g.Uses[0]; u.User != old || u.Application != "orders-api" || !strings.HasPrefix(u.Client, "127.0.0.1:") || u.Since.IsZero() {
		t.Fatalf("the gate must name the session: %+v", u)
	}
	if err := login(ctx, env, old, m1.Get("password")); err != nil {
		t.Fatalf("the old password must still work while the revoke is held: %v", err)
	}
	code, out := keyturn(t, env, "status")
	if code != 0 || !strings.Contains(out, "held: 1 session ("+old+" as orders-api from 127.0.0.1") {
		t.Fatalf("status must show the held revoke with the session; exited %d:\n%s", code, out)
	}

	// The consumer moves: its session closes, and the next check lets the revoke go.
	if err := session.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var res workflows.RotateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated || res.RevokeGate == nil || res.RevokeGate.State != workflows.GateIdle || res.RevokeGate.HeldSince.IsZero() {
		t.Fatalf("result %+v", res)
	}
	err := login(ctx, env, old, m1.Get("password"))
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		t.Fatalf("the old password must be refused once the gate let the revoke go, got %v", err)
	}
	checkReplay(t, env, run.GetID(), run.GetRunID(), "rotate_revoke_gate_held")

	// Held again, and an operator decides: `keyturn revoke-now` revokes with the session
	// still open. (`rotate --wait` stops waiting once the revoke is held and says why;
	// skip-grace is refused in the gate and names revoke-now.)
	v2, m2 := current(t, env, id)
	openSession(t, env, v2.Metadata["role"], m2.Get("password"), "batch-job")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code == 0 || !strings.Contains(out, "is revoke_held") || !strings.Contains(out, "as batch-job from 127.0.0.1") {
		t.Fatalf("rotate --wait on a held revoke exited %d:\n%s", code, out)
	}
	run = env.Client.GetWorkflow(ctx, workflows.RotateWorkflowID(id), "")
	if code, out := keyturn(t, env, "skip-grace", string(id)); code == 0 || !strings.Contains(out, "keyturn revoke-now "+string(id)) {
		t.Fatalf("skip-grace in the gate exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "revoke-now", string(id)); code != 0 {
		t.Fatalf("revoke-now exited %d:\n%s", code, out)
	}
	if err := run.Get(ctx, &res); err != nil || res.RevokeGate.State != workflows.GateRevokedByOperator || len(res.RevokeGate.Uses) != 1 {
		t.Fatalf("after revoke-now: %+v, %v", res.RevokeGate, err)
	}
	if err := login(ctx, env, v2.Metadata["role"], m2.Get("password")); err == nil {
		t.Fatal("the revoked password must be refused after revoke-now")
	}
	if code, out := keyturn(t, env, "revoke-now", string(id)); code == 0 || !strings.Contains(out, "there is nothing to revoke-now") {
		t.Fatalf("revoke-now after the rotation ended exited %d:\n%s", code, out)
	}
}

// openSession logs in as user and keeps the connection open, as a consumer's pool does.
func openSession(t *testing.T, env *testenv.Env, user string, password secret.Sensitive, app string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=demo sslmode=disable connect_timeout=5 application_name=%s", env.Cluster.Host, env.Cluster.Port, user, app))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = password.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open a session as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// rotateUntilHeld starts a rotation of id (of the given kind) and waits until its revoke
// gate holds, returning the run and the status that said so.
func rotateUntilHeld(t *testing.T, env *testenv.Env, id secret.ID, kind string) (client.WorkflowRun, workflows.RotateStatus) {
	t.Helper()
	ctx := context.Background()
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, kind), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	var held workflows.RotateStatus
	waitFor(t, 60*time.Second, "the revoke to be held", func() bool {
		v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus)
		if err != nil || v.Get(&held) != nil {
			return false
		}
		return held.Outcome == workflows.OutcomeRevokeHeld
	})
	return run, held
}
