package tests

import (
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// TestOnTemporalPersistedInPostgres runs Keyturn against the layout production uses: the
// Temporal server's own binary as a separate process, persisted in PostgreSQL, set up as
// deploy/compose sets it up (temporalpg). A rotation with its revoke, then an incident in
// contain mode, end as they do on the embedded server: the credential in use works, the
// contained one does not.
func TestOnTemporalPersistedInPostgres(t *testing.T) {
	t.Setenv(testenv.TemporalEnv, "postgres")
	env := testenv.New(t, testenv.Options{})
	ctx := t.Context()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 || !strings.Contains(out, "outcome:  rotated") {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 || !strings.Contains(out, "revoke") {
		t.Fatalf("second rotation exited %d:\n%s", code, out)
	}
	v2, m2 := current(t, env, id)
	if err := login(ctx, env, v2.Metadata["role"], m2.Get("password")); err != nil {
		t.Fatalf("the current credential must work: %v", err)
	}
	code, out := keyturn(t, env, "incident", "start", "--id", "pg-1", "--select", "id="+string(id), "--mode", "contain", "--reason", "drill on Temporal in PostgreSQL", "--yes")
	if code != 0 || !strings.Contains(out, "1 rotated") {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	if err := login(ctx, env, v2.Metadata["role"], m2.Get("password")); err == nil {
		t.Fatal("the contained credential must be refused")
	}
	v3, m3 := current(t, env, id)
	if v3.Number != v2.Number+1 {
		t.Fatalf("current is version %d, want %d", v3.Number, v2.Number+1)
	}
	if err := login(ctx, env, v3.Metadata["role"], m3.Get("password")); err != nil {
		t.Fatalf("the credential the incident issued must work: %v", err)
	}
}
