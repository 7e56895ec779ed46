package tests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// TestRotateThroughCLI rotates a real Postgres role twice through `keyturn rotate --wait`
// and checks the store, real logins, the twins swapping, and the Web UI's search
// attributes.
func TestRotateThroughCLI(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	const id = secret.ID("e2e/app")

	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code != 0 {
		t.Fatalf("first rotate exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "outcome:  rotated") {
		t.Fatalf("first rotate output lacks the outcome:\n%s", out)
	}
	v1, m1 := current(t, env, id)
	if v1.Metadata["role"] != "app_a" {
		t.Fatalf("first rotation should re-key twin app_a, got metadata %v", v1.Metadata)
	}
	if err := login(ctx, env, "app_a", m1.Get("password")); err != nil {
		t.Fatalf("current credential v1 does not log in: %v", err)
	}

	code, out = keyturn(t, env, "rotate", string(id), "--wait")
	if code != 0 {
		t.Fatalf("second rotate exited %d:\n%s", code, out)
	}
	v2, m2 := current(t, env, id)
	if v2.Metadata["role"] != "app_b" || v2.Number != v1.Number+1 {
		t.Fatalf("second rotation: want twin app_b as version %d, got %d %v", v1.Number+1, v2.Number, v2.Metadata)
	}
	if err := login(ctx, env, "app_b", m2.Get("password")); err != nil {
		t.Fatalf("new credential does not log in: %v", err)
	}
	err := login(ctx, env, "app_a", m1.Get("password"))
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		t.Fatalf("revoked credential app_a should be refused by the server, got %v", err)
	}
	prev, _, err := env.Store.Read(ctx, id, secret.StagePrevious)
	if err != nil || prev.Token != v1.Token {
		t.Fatalf("previous should be version %d, got %v %v", v1.Number, prev.Token, err)
	}
	if _, _, err := env.Store.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("no pending version may remain after a rotation, got %v", err)
	}

	// The Web UI lists the run by its search attributes.
	query := fmt.Sprintf("KeyturnSecretID = '%s' AND KeyturnKind = 'postgres' AND KeyturnStep = 'done'", id)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := env.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list workflows: %v", err)
		}
		if len(resp.GetExecutions()) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility query %q found %d runs, want 2", query, len(resp.GetExecutions()))
		}
		time.Sleep(200 * time.Millisecond)
	}

	checkReplay(t, env, "rotate/"+string(id), "", "rotate_alternating_second_rotation")
	checkLeanHistory(t, env, "rotate/"+string(id))

	code, out = keyturn(t, env, "status")
	if code != 0 || !strings.Contains(out, string(id)) || !strings.Contains(out, "rotated") {
		t.Fatalf("status exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "status", string(id), "--output", "json")
	if code != 0 || !strings.Contains(out, `"outcome": "rotated"`) {
		t.Fatalf("status <id> exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "get", string(id))
	if code != 0 || !strings.Contains(out, "role: app_b") {
		t.Fatalf("get must show the metadata; exited %d:\n%s", code, out)
	}
	if strings.Contains(out, m2.Get("password").Reveal()) {
		t.Fatal("get without --reveal printed the password") // the output is not printed: it holds the password
	}
	code, out = keyturn(t, env, "get", string(id), "--reveal")
	if code != 0 || !strings.Contains(out, m2.Get("password").Reveal()) {
		t.Fatalf("get --reveal must show the value; exited %d", code)
	}
}

// TestFailedTestRollsBack: the new credential cannot run the inventory's check query (no
// privilege), so Test fails, the rotation rolls back, the pending version is discarded,
// the twin it re-keyed is disabled again and the current credential keeps working.
func TestFailedTestRollsBack(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotate exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)

	// Break the next rotation: the check query needs a table the group role cannot read.
	superExec(t, env, "CREATE TABLE vault_only (x int)")
	env.Inventory.Secrets[0].Postgres.CheckQuery = "SELECT count(*) FROM vault_only"

	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code == 0 {
		t.Fatalf("rotation with a failing check query must fail, output:\n%s", out)
	}
	for _, want := range []string{"outcome:  rolled_back", "version 1 is current and was verified to work"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	after, m := current(t, env, id)
	if after.Token != v1.Token {
		t.Fatalf("current changed from version %d to %d after a rollback", v1.Number, after.Number)
	}
	if err := login(ctx, env, "app_a", m1.Get("password")); err != nil || !m.Get("password").Equal(m1.Get("password")) {
		t.Fatalf("current credential must keep working after a rollback: %v", err)
	}
	if _, _, err := env.Store.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("the failed version must be discarded, got %v", err)
	}
	var canLogin bool
	conn := superConn(t, env)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app_b'").Scan(&canLogin); err != nil {
		t.Fatal(err)
	}
	if canLogin {
		t.Fatal("twin app_b, re-keyed by the failed rotation, must be NOLOGIN again")
	}
	checkReplay(t, env, "rotate/"+string(id), "", "rolled_back_check_query_denied")
}

// TestSingleStrategy rotates a role that cannot have twins: the role itself gets a new
// password each time, the old one stops working and no other role is created.
func TestSingleStrategy(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/single", Strategy: "single", Grace: "0s", Target: demo.Target{Role: "reporting"}}}})
	ctx := context.Background()
	const id = secret.ID("e2e/single")

	// With no recorded version in use there would be nothing to restore after a failed
	// first rotation: refused, with the command that records it, and nothing changed.
	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code == 0 || !strings.Contains(out, "keyturn put e2e/single -f ") || !strings.Contains(out, "--meta role=reporting") {
		t.Fatalf("a single-strategy secret with no current version must be refused with the put command; exit %d:\n%s", code, out)
	}
	inUse := secret.NewSensitive("Reporting-In-Use-2024")
	verifier, err := postgres.SCRAMVerifier(inUse)
	if err != nil {
		t.Fatal(err)
	}
	superExec(t, env, "ALTER ROLE reporting LOGIN PASSWORD '"+verifier+"'")
	if code, o := keyturnIn(t, env, inUse.Reveal()+"\n", "put", string(id), "--meta", "role=reporting"); code != 0 {
		t.Fatalf("put exited %d:\n%s", code, o)
	}
	if err := login(ctx, env, "reporting", inUse); err != nil {
		t.Fatalf("the refused rotation must not have changed the role: %v", err)
	}
	previous := secret.Material{"password": inUse}
	for round := 1; round <= 2; round++ {
		if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
			t.Fatalf("rotation %d exited %d:\n%s", round, code, out)
		}
		v, m := current(t, env, id)
		if v.Metadata["role"] != "reporting" {
			t.Fatalf("rotation %d: single strategy must keep role reporting, got %v", round, v.Metadata)
		}
		if err := login(ctx, env, "reporting", m.Get("password")); err != nil {
			t.Fatalf("rotation %d: new password does not log in: %v", round, err)
		}
		if err := login(ctx, env, "reporting", previous.Get("password")); err == nil {
			t.Fatalf("rotation %d: the previous password still logs in", round)
		}
		previous = m
	}
	var twins int
	conn := superConn(t, env)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'reporting_%'").Scan(&twins); err != nil {
		t.Fatal(err)
	}
	if twins != 0 {
		t.Fatalf("single strategy created %d extra roles", twins)
	}
	checkReplay(t, env, "rotate/"+string(id), "", "rotate_single_strategy")
}

// TestAdoptLegacyLogin: consumers log in as the group role itself before Keyturn. The
// operator records that credential with `keyturn put --meta role=app`; the first rotation
// moves consumers to a twin and, after the grace period, ends the group role's own login,
// while the twin keeps every privilege.
func TestAdoptLegacyLogin(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s", CheckQuery: "SELECT count(*) FROM orders"}}})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	legacy := secret.NewSensitive("Legacy-Password-From-2019")
	verifier, err := postgres.SCRAMVerifier(legacy)
	if err != nil {
		t.Fatal(err)
	}
	superExec(t, env, "ALTER ROLE app LOGIN PASSWORD '"+verifier+"'")
	if err := login(ctx, env, "app", legacy); err != nil {
		t.Fatalf("legacy login: %v", err)
	}

	if code, out := keyturn(t, env, "put", string(id)); code == 0 || !strings.Contains(out, "--meta role=") {
		t.Fatalf("put of a managed secret without its role must be refused, got %d:\n%s", code, out)
	}
	if code, o := keyturnIn(t, env, legacy.Reveal()+"\n", "put", string(id), "--meta", "role=app"); code != 0 {
		t.Fatalf("put exited %d:\n%s", code, o)
	}
	if code, o := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, o)
	}
	v, m := current(t, env, id)
	if v.Metadata["role"] != "app_a" {
		t.Fatalf("first rotation after adoption should use twin app_a, got %v", v.Metadata)
	}
	if err := login(ctx, env, "app_a", m.Get("password")); err != nil {
		t.Fatalf("twin does not log in: %v", err)
	}
	if err := login(ctx, env, "app", legacy); err == nil {
		t.Fatal("the legacy login of the group role still works after the rotation")
	}
	// The group role kept its privileges for the twin: the check query of a second
	// rotation (which reads the orders table) passes.
	if code, o := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("second rotation exited %d:\n%s", code, o)
	}
	checkReplay(t, env, "rotate/"+string(id), "", "rotate_after_adopting_legacy_login")
}

// checkLeanHistory: a rotation the CLI started (no grace period, nothing to purge) costs
// the server 26 history events: the plan and Promote are local activities, one marker
// each; Create, Test and Revoke are regular activities; one search attribute update at
// its end; no version marker, no audit activity of its own to end. The bare
// four-activity workflow has 29.
func checkLeanHistory(t *testing.T, env *testenv.Env, wid string) {
	t.Helper()
	h := decodedHistory(t, env, wid, "")
	var types []string
	upserts := 0
	for _, ev := range h.GetEvents() {
		types = append(types, strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_"))
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			upserts++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if name := ev.GetMarkerRecordedEventAttributes().GetMarkerName(); name != "LocalActivity" {
				t.Errorf("the rotation recorded a %s marker", name)
			}
		}
	}
	local, regular := stepRuns(t, h)
	wantLocal, wantRegular := []string{"Plan", "Promote"}, []string{"Create", "Test", "Revoke"}
	if len(types) > 26 || upserts != 1 || !slices.Equal(local, wantLocal) || !slices.Equal(regular, wantRegular) {
		t.Errorf("the rotation's history has %d events (want at most 26), %d search attribute updates (want 1), local activities %v (want %v) and activities %v (want %v): %s",
			len(types), upserts, local, wantLocal, regular, wantRegular, strings.Join(types, ", "))
	}
	t.Logf("%s: %d history events", wid, len(types))
}
