package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// withOwnAdmin gives cfg an admin role of its own, so the test can count that admin's
// sessions on the server without seeing other tests'.
func withOwnAdmin(t *testing.T, cfg Config) Config {
	t.Helper()
	user, password := createAdmin(t, "CREATEROLE", "pg_read_all_stats")
	return withAdmin(t, cfg, user, password)
}

// withAdmin makes cfg's role managed by the given admin.
func withAdmin(t *testing.T, cfg Config, user string, password secret.Sensitive) Config {
	t.Helper()
	super := superConn(t)
	cfg.AdminUser, cfg.AdminPassword = user, password
	if serverVersion(t, super) >= 160000 {
		exec(t, super, fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE", ident(cfg.Role), ident(cfg.AdminUser)))
	}
	return cfg
}

// adminSessions counts the sessions the admin has open on the server.
func adminSessions(t *testing.T, admin string) int {
	t.Helper()
	var n int
	err := superConn(t).QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name = $2", admin, applicationName).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPooledAdminSessionsAreReused rotates twice through rotators built for each step, as
// the worker's binding builds them, sharing one Pools: every admin call after the first
// reuses the one session, which stays open until the pools close.
func TestPooledAdminSessionsAreReused(t *testing.T) {
	cfg := withOwnAdmin(t, newConfig(t, StrategyAlternating))
	pools := NewPools(2)
	t.Cleanup(pools.Close)
	cfg.Pools = pools
	fresh := func() *step { return &step{t: t, r: mustNew(t, cfg)} }

	s := fresh()
	v1, _ := s.rotate(nil)
	s2 := fresh()
	s2.n = s.n
	v2, m2 := s2.rotate(&v1)
	if err := fresh().revoke(v1, &v2); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := mustNew(t, cfg).InUse(t.Context(), rotators.UsageRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatalf("InUse: %v", err)
	}
	if n := adminSessions(t, cfg.AdminUser); n != 1 {
		t.Errorf("admin %s has %d sessions open after sequential steps, want the one pooled session", cfg.AdminUser, n)
	}
	if err := tryLogin(t, v2.Metadata[MetadataRole], m2.Get(FieldPassword).Reveal()); err != nil {
		t.Errorf("log in with the promoted password: %v", err)
	}

	pools.Close()
	if n := adminSessions(t, cfg.AdminUser); n != 0 {
		t.Errorf("admin %s has %d sessions open after the pools closed, want none", cfg.AdminUser, n)
	}
	err := fresh().revoke(v2, nil)
	if !errors.Is(err, errPoolsClosed) {
		t.Errorf("Revoke after Close: %v, want the pools-closed error", err)
	}
}

// TestUnpooledAdminSessionsClose checks the path without Pools: each call logs in and
// closes its session.
func TestUnpooledAdminSessionsClose(t *testing.T) {
	cfg := withOwnAdmin(t, newConfig(t, StrategyAlternating))
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, _ := s.rotate(nil)
	v2, _ := s.rotate(&v1)
	if err := s.revoke(v1, &v2); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := adminSessions(t, cfg.AdminUser); n != 0 {
		t.Errorf("admin %s has %d sessions open, want none without pools", cfg.AdminUser, n)
	}
}

// TestPoolsKeyOnTheAdminPassword checks that a wrong admin password is refused through a
// pool as it is without one (final, password not echoed), and that the right password,
// given next to the same Pools, gets a pool of its own that works.
func TestPoolsKeyOnTheAdminPassword(t *testing.T) {
	cfg := withOwnAdmin(t, newConfig(t, StrategyAlternating))
	pools := NewPools(0)
	t.Cleanup(pools.Close)
	cfg.Pools = pools

	wrong := cfg
	wrongPassword := "not-the-admin-password-" + unique("x")
	wrong.AdminPassword = secret.NewSensitive(wrongPassword)
	s := &step{t: t, r: mustNew(t, wrong)}
	v, m := s.generate(nil)
	err := s.r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Fatalf("Apply with a wrong admin password: %v, want ErrPermissionDenied", err)
	}
	wantNoSecrets(t, err, wrongPassword, m.Get(FieldPassword).Reveal())

	right := &step{t: t, r: mustNew(t, cfg)}
	right.apply(v, m)
	if err := tryLogin(t, v.Metadata[MetadataRole], m.Get(FieldPassword).Reveal()); err != nil {
		t.Errorf("log in after Apply through the right admin's pool: %v", err)
	}
	pools.mu.Lock()
	n := len(pools.pools)
	pools.mu.Unlock()
	if n != 2 {
		t.Errorf("pools hold %d pools, want one per admin password (2)", n)
	}
}
