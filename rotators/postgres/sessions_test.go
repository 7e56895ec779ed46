package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// TestTerminateSessions checks that Revoke ends the revoked role's open sessions when
// asked to, with an admin that holds pg_signal_backend, and leaves them alone otherwise.
func TestTerminateSessions(t *testing.T) {
	for _, terminate := range []bool{true, false} {
		t.Run(fmt.Sprintf("terminate=%v", terminate), func(t *testing.T) {
			cfg := newConfig(t, StrategyAlternating)
			cfg.AdminUser, cfg.AdminPassword = createAdmin(t, "CREATEROLE", "pg_signal_backend")
			cfg.TerminateSessions = terminate
			s := &step{t: t, r: mustNew(t, cfg)}
			v1, m1 := s.rotate(nil)
			open := connectDSN(t, cluster.DSN(v1.Metadata[MetadataRole], m1.Get(FieldPassword).Reveal(), "postgres"))
			v2, _ := s.rotate(&v1)
			if err := s.revoke(v1, &v2); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			// The signal is asynchronous: give the backend a moment to go.
			var err error
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, err = open.Exec(t.Context(), "SELECT 1"); err != nil {
					break
				}
				if !terminate {
					break
				}
			}
			if terminate && err == nil {
				t.Error("the revoked role's session is still open")
			}
			if !terminate && err != nil {
				t.Errorf("the revoked role's session was ended without TerminateSessions: %v", err)
			}
		})
	}
}

// TestTerminateNeedsSignalBackend checks that an admin without pg_signal_backend gets
// ErrPermissionDenied when there is a session to end.
func TestTerminateNeedsSignalBackend(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	cfg.TerminateSessions = true
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	connectDSN(t, cluster.DSN(v1.Metadata[MetadataRole], m1.Get(FieldPassword).Reveal(), "postgres"))
	v2, _ := s.rotate(&v1)
	err := s.revoke(v1, &v2)
	if !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Fatalf("Revoke = %v, want ErrPermissionDenied", err)
	}
}

// TestPermissionDenied checks that an admin lacking CREATEROLE, or one whose login is
// refused, gets ErrPermissionDenied, and that no error holds the password or a verifier.
func TestPermissionDenied(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	weak := cfg
	weak.AdminUser, weak.AdminPassword = createAdmin(t, "NOCREATEROLE")
	wrong := cfg
	wrong.AdminPassword = secret.NewSensitive("not-the-admin-password")

	for name, c := range map[string]Config{"no CREATEROLE": weak, "wrong admin password": wrong} {
		t.Run(name, func(t *testing.T) {
			s := &step{t: t, r: mustNew(t, c)}
			v, m := s.generate(nil)
			err := s.r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
			if !errors.Is(err, rotators.ErrPermissionDenied) {
				t.Fatalf("Apply = %v, want ErrPermissionDenied", err)
			}
			wantNoSecrets(t, err, m.Get(FieldPassword).Reveal(), c.AdminPassword.Reveal())
		})
	}

	// With the twin already there, the weak admin fails at ALTER ROLE ... PASSWORD, the
	// statement that carries the verifier.
	s := &step{t: t, r: mustNew(t, cfg)}
	v, m := s.rotate(nil)
	weakRotator := mustNew(t, weak)
	err := weakRotator.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Fatalf("Apply to an existing twin = %v, want ErrPermissionDenied", err)
	}
	wantNoSecrets(t, err, m.Get(FieldPassword).Reveal())
	err = weakRotator.Revoke(t.Context(), rotators.RevokeRequest{Version: v})
	if !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Fatalf("Revoke = %v, want ErrPermissionDenied", err)
	}
}

// TestMissingGroupRole checks that a group role that does not exist is a configuration
// error, not something the rotator creates.
func TestMissingGroupRole(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	cfg.Role = unique("absent")
	s := &step{t: t, r: mustNew(t, cfg)}
	v, m := s.generate(nil)
	err := s.r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Apply = %v, want ErrInvalidConfig about a missing group role", err)
	}
}

// TestCheckQuery checks that Test runs the check query as the new role, rejects the
// credential when the role lacks a privilege, and cannot change data.
func TestCheckQuery(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	super := superConn(t)
	table := unique("checked")
	exec(t, super, fmt.Sprintf("CREATE TABLE %s (id int)", ident(table)))

	cfg.CheckQuery = fmt.Sprintf("SELECT count(*) FROM %s", ident(table))
	s := &step{t: t, r: mustNew(t, cfg)}
	v, m := s.generate(nil)
	s.apply(v, m)
	err := s.r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrCheckFailed) {
		t.Fatalf("Test without SELECT on the table = %v, want ErrCheckFailed", err)
	}
	exec(t, super, fmt.Sprintf("GRANT SELECT, INSERT ON %s TO %s", ident(table), ident(cfg.Role)))
	if err := s.r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Fatalf("Test with SELECT granted: %v", err)
	}

	cfg.CheckQuery = fmt.Sprintf("INSERT INTO %s VALUES (1)", ident(table))
	writer := mustNew(t, cfg)
	if err := writer.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err == nil {
		t.Error("a writing check query succeeded; it must run read-only")
	}
}

// TestErrorsAndLogsHoldNoPassword checks the paths where a password is at hand: a refused
// login names no password, and the server log shows the verifier, never the password.
func TestErrorsAndLogsHoldNoPassword(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	s := &step{t: t, r: mustNew(t, cfg)}
	v, m := s.rotate(nil)
	password := m.Get(FieldPassword).Reveal()

	wrong := secret.Material{FieldPassword: secret.NewSensitive(password[1:] + "x")}
	err := s.r.Test(t.Context(), rotators.TestRequest{Version: v, Material: wrong})
	if !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test with a wrong password = %v, want ErrCredentialRejected", err)
	}
	wantNoSecrets(t, err, password, wrong.Get(FieldPassword).Reveal())

	log, err := cluster.ServerLog()
	if err != nil {
		t.Fatal(err)
	}
	alter := fmt.Sprintf("ALTER ROLE %s WITH LOGIN INHERIT PASSWORD 'SCRAM-SHA-256$4096:", ident(v.Metadata[MetadataRole]))
	if !strings.Contains(log, alter) {
		t.Fatalf("the server log does not show the ALTER ROLE with a verifier; the leak check below would prove nothing")
	}
	wantNotInServerLog(t, []string{password})
}

// TestCheckQueryCannotWrite gives the role INSERT on a table and tries check queries that
// write in every way one statement or several could: each fails with ErrCheckFailed and
// the table stays empty. Before the check ran through the extended protocol, "SELECT 1;
// COMMIT; INSERT ..." committed the read-only transaction and inserted a row.
func TestCheckQueryCannotWrite(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	super := superConn(t)
	table := unique("guarded")
	exec(t, super, fmt.Sprintf("CREATE TABLE %s (id int)", ident(table)))
	exec(t, super, fmt.Sprintf("GRANT SELECT, INSERT ON %s TO %s", ident(table), ident(cfg.Role)))
	s := &step{t: t, r: mustNew(t, cfg)}
	v, m := s.generate(nil)
	s.apply(v, m)

	tbl := ident(table)
	writers := map[string]string{
		"insert returning":      fmt.Sprintf("INSERT INTO %s VALUES (1) RETURNING 1", tbl),
		"writable CTE":          fmt.Sprintf("WITH w AS (INSERT INTO %s VALUES (2) RETURNING 1) SELECT * FROM w", tbl),
		"commit then write":     fmt.Sprintf("SELECT 1; COMMIT; INSERT INTO %s VALUES (3)", tbl),
		"read write then write": fmt.Sprintf("SET TRANSACTION READ WRITE; INSERT INTO %s VALUES (4)", tbl),
		"rollback then write":   fmt.Sprintf("ROLLBACK; INSERT INTO %s VALUES (5)", tbl),
	}
	for name, query := range writers {
		t.Run(name, func(t *testing.T) {
			cfg := cfg
			cfg.CheckQuery = query
			cfg.ApplyDefaults()
			// Bypass New's validation, which refuses several statements before anything
			// runs: this checks what the server is asked to do if one got through.
			r := &Rotator{cfg: cfg}
			err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m})
			if !errors.Is(err, rotators.ErrCheckFailed) {
				t.Errorf("Test = %v, want ErrCheckFailed", err)
			}
		})
	}
	var rows int
	if err := super.QueryRow(t.Context(), fmt.Sprintf("SELECT count(*) FROM %s", tbl)).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("check queries wrote %d row(s); they must not be able to write", rows)
	}

	// A trailing semicolon is still one statement, and reading still works.
	cfg.CheckQuery = fmt.Sprintf("SELECT count(*) FROM %s;", tbl)
	if err := mustNew(t, cfg).Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Errorf("Test with a one-statement check and a trailing semicolon: %v", err)
	}
	cfg.CheckQuery = "SELECT 1; SELECT 2"
	if _, err := New(cfg); !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "2 statements") {
		t.Errorf("New with two statements = %v, want ErrInvalidConfig naming 2 statements", err)
	}
}
