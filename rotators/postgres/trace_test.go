package postgres

import (
	"strconv"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/pgxspans"
)

// TestSpans rotates a role on the password-auth server with a tracer provider: every
// connection and statement is a child span of the caller's, with the database
// attributes and the statement's operation; the ALTER ROLE that carries the verifier
// shows as "ALTER ROLE" alone, and no span holds the password, the verifier or the admin
// password. A refused login and a refused check query say their SQLSTATE, not the
// server's message.
func TestSpans(t *testing.T) {
	c := pgtest.Need(t, cluster)
	rec := spantest.New(t)
	cfg := newConfig(t, StrategyAlternating)
	cfg.TracerProvider = rec.Provider
	cfg.CheckQuery = "SELECT count(*) FROM pg_authid" // only a superuser may read it
	r := mustNew(t, cfg)
	ctx, parent := rec.Parent(t.Context())

	s := &step{t: t, r: r}
	v, m := s.generate(nil)
	if err := r.Apply(ctx, rotators.ApplyRequest{Version: v, Material: m}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	spans := rec.Scope(pgxspans.ScopeName)
	spantest.WantChildren(t, spans, parent)
	names := map[string]int{}
	for _, sp := range spans {
		names[sp.Name]++
		a := spantest.Attrs(sp)
		want := map[string]string{"db.system.name": "postgresql", "db.namespace": "postgres", "server.address": c.Host, "server.port": strconv.Itoa(c.Port)}
		for k, w := range want {
			if a[k] != w {
				t.Errorf("span %s: %s = %q, want %q", sp.Name, k, a[k], w)
			}
		}
		if sp.Name != pgxspans.ConnectSpanName && a["db.operation.name"] != sp.Name {
			t.Errorf("span %s: db.operation.name = %q, want the span's name", sp.Name, a["db.operation.name"])
		}
		if _, ok := a["db.query.text"]; ok {
			t.Errorf("span %s records the statement's text", sp.Name)
		}
	}
	for _, want := range []string{pgxspans.ConnectSpanName, "BEGIN", "SELECT", "CREATE ROLE", "GRANT", "ALTER ROLE", "COMMIT"} {
		if names[want] == 0 {
			t.Errorf("no %s span; spans: %v", want, names)
		}
	}

	// Test: the new twin logs in, then the check query is refused.
	rec.Reset()
	err := r.Test(ctx, rotators.TestRequest{Version: v, Material: m})
	if err == nil {
		t.Fatal("Test: the check query on pg_authid should be refused")
	}
	spans = rec.Scope(pgxspans.ScopeName)
	spantest.WantChildren(t, spans, parent)
	refused := false
	for _, sp := range spans {
		a := spantest.Attrs(sp)
		if sp.Name == "SELECT" && a["error.type"] == sqlstateInsufficientPrivilege {
			refused = a["db.response.status_code"] == sqlstateInsufficientPrivilege && sp.Status.Description == sqlstateInsufficientPrivilege
		}
	}
	if !refused {
		t.Errorf("no SELECT span with the refused check query's SQLSTATE:\n%s", spantest.Dump(spans))
	}

	// A wrong password: the connect span says 28P01.
	rec.Reset()
	wrong := secret.Material{FieldPassword: secret.NewSensitive(newPassword())}
	if err := r.Test(ctx, rotators.TestRequest{Version: v, Material: wrong}); err == nil {
		t.Fatal("Test with a wrong password passed")
	}
	spans = rec.Scope(pgxspans.ScopeName)
	if len(spans) != 1 || spans[0].Name != pgxspans.ConnectSpanName || spantest.Attrs(spans[0])["error.type"] != sqlstateInvalidPassword || spans[0].Status.Description != sqlstateInvalidPassword {
		t.Errorf("a refused login should be one connect span with error.type %s:\n%s", sqlstateInvalidPassword, spantest.Dump(spans))
	}

	verifier := verifierOf(t, v.Metadata[MetadataRole])
	all := rec.Spans()
	spantest.WantNoneOf(t, all, m.Get(FieldPassword).Reveal(), wrong.Get(FieldPassword).Reveal(), cfg.AdminPassword.Reveal(), verifier, "SCRAM-SHA-256$")
}

// verifierOf reads a role's stored verifier, for leak scans.
func verifierOf(t *testing.T, role string) string {
	t.Helper()
	var v string
	if err := superConn(t).QueryRow(t.Context(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
