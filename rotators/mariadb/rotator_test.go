package mariadb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/mariadbtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// version makes and (if apply) applies a version of r after current.
func version(t *testing.T, r *Rotator, n int, current *secret.Version, apply bool) (secret.Version, secret.Material) {
	t.Helper()
	g, err := r.Generate(t.Context(), rotators.GenerateRequest{SecretID: "test/mariadb", Current: current})
	if err != nil {
		t.Fatal(err)
	}
	v := secret.Version{SecretID: "test/mariadb", Number: n, Metadata: g.Metadata}
	if apply {
		if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: g.Material}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return v, g.Material
}

func pw(m secret.Material) string { return m.Get(FieldPassword).Reveal() }

// Both twins work during the grace; the revoke locks the old one.
func TestTwinsOverlapUntilTheRevoke(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	r := mustNew(t, cfg)
	v1, m1 := version(t, r, 1, nil, true)
	v2, m2 := version(t, r, 2, &v1, true)
	for _, c := range []struct {
		v secret.Version
		m secret.Material
	}{{v1, m1}, {v2, m2}} {
		if err := login(t, c.v.Metadata[MetadataUser], pw(c.m)); err != nil {
			t.Fatalf("%s during the grace: %v", c.v.Metadata[MetadataUser], err)
		}
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if err := login(t, v1.Metadata[MetadataUser], pw(m1)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("the revoked twin: %v, want its account locked", err)
	}
	if err := login(t, v2.Metadata[MetadataUser], pw(m2)); err != nil {
		t.Fatalf("the kept twin after the revoke: %v", err)
	}
}

// A containment (EndSessions, nothing kept) locks the account and ends its connections;
// the revoke gate saw them before.
func TestContainEndsSessions(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	r := mustNew(t, cfg)
	v1, m1 := version(t, r, 1, nil, true)
	db := server.Open(v1.Metadata[MetadataUser], pw(m1))
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Since: time.Now()})
	if err != nil || len(u.Uses) != 1 || !strings.Contains(u.Checked, "PROCESSLIST") {
		t.Fatalf("InUse with one connection open: %+v, %v", u, err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, EndSessions: true}); err != nil {
		t.Fatal(err)
	}
	if err := conn.PingContext(t.Context()); err == nil {
		t.Error("the connection survived the containment")
	}
	u, err = r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Since: time.Now()})
	if err != nil || u.InUse() {
		t.Fatalf("InUse after the containment: %+v, %v; want idle", u.Uses, err)
	}
	if err := login(t, v1.Metadata[MetadataUser], pw(m1)); err == nil {
		t.Fatal("the contained account still logs in")
	}
}

// The check runs read-only: a write is ErrCheckFailed, as is a table the role may not
// read; an account that does not act as the role is refused too.
func TestCheckQuery(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	// A function that writes, so a query that starts with SELECT can try to write: the
	// read-only session is the second wall behind the inventory's first (reads only).
	fn := unique("app.writes")
	if err := server.Exec(t.Context(), "CREATE DATABASE IF NOT EXISTS secret_db", "CREATE TABLE IF NOT EXISTS secret_db.t (x int)",
		"GRANT INSERT, EXECUTE ON app.* TO "+cfg.Role,
		"CREATE FUNCTION "+fn+"() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO app.items VALUES (1); RETURN 1; END"); err != nil {
		t.Fatal(err)
	}
	cfg.CheckQuery = "INSERT INTO app.items VALUES (1)"
	if _, err := New(cfg); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("New with an INSERT as the check: %v, want ErrInvalidConfig", err)
	}
	for _, c := range []struct {
		query string
		want  error
	}{
		{"SELECT count(*) FROM app.items", nil},
		{"SELECT " + fn + "()", rotators.ErrCheckFailed},
		{"SELECT count(*) FROM secret_db.t", rotators.ErrCheckFailed},
	} {
		cfg.CheckQuery = c.query
		r := mustNew(t, cfg)
		v, m := version(t, r, 1, nil, true)
		err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m})
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("check %q: Test = %v, want %v", c.query, err, c.want)
		}
		if errors.Is(err, rotators.ErrPermissionDenied) {
			t.Errorf("check %q: %v reads as the admin's missing privilege; it is the check's failure", c.query, err)
		}
	}
	var n int
	db := server.Open("", "")
	defer db.Close()
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM app.items").Scan(&n); err != nil || n != 0 {
		t.Fatalf("app.items holds %d rows after the checks (%v): a check wrote", n, err)
	}
}

// A missing role, a missing single account and a wrong admin password are final and
// say what to do; no error holds a password.
func TestFinalErrors(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	noRole := cfg
	noRole.Role = "no_such_role"
	noRole.Twins = [2]string{}
	noAccount := newConfig(t, StrategySingle)
	noAccount.User = "no_such_user"
	wrongAdmin := cfg
	wrongAdmin.AdminPassword = secret.NewSensitive("Not-The-Admin-Password")
	for _, c := range []struct {
		name string
		cfg  Config
		want error
		says string
	}{
		{"missing role", noRole, rotators.ErrInvalidConfig, "does not exist"},
		{"missing account", noAccount, rotators.ErrInvalidConfig, "does not exist"},
		{"wrong admin password", wrongAdmin, rotators.ErrPermissionDenied, "admin"},
	} {
		r := mustNew(t, c.cfg)
		v, m := version(t, r, 1, nil, false)
		err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: Apply = %v, want %v saying %q", c.name, err, c.want, c.says)
		}
		if err != nil && (strings.Contains(err.Error(), pw(m)) || strings.Contains(err.Error(), "Not-The-Admin-Password") || strings.Contains(err.Error(), nativeHash(pw(m)))) {
			t.Errorf("%s: the error holds a password or its hash", c.name)
		}
	}
}

// TestEveryAdminPrivilegeIsNeeded takes each of the admin's privileges (and the role's
// admin option) away in turn: some step is refused for lack of it.
func TestEveryAdminPrivilegeIsNeeded(t *testing.T) {
	for _, priv := range append(append([]string(nil), mariadbtest.AdminPrivileges...), "ADMIN OPTION") {
		t.Run(priv, func(t *testing.T) {
			cfg := newConfig(t, StrategyAlternating)
			admin := "'" + cfg.AdminUser + "'@'%'"
			revoke := "REVOKE " + priv + " ON *.* FROM " + admin
			if priv == "ADMIN OPTION" {
				revoke = "REVOKE ADMIN OPTION FOR " + cfg.Role + " FROM " + admin
			}
			if err := server.Exec(t.Context(), revoke); err != nil {
				t.Fatal(err)
			}
			r := mustNew(t, cfg)
			// A connection of the first twin, so the revoke has one to see and end.
			v1, m1 := version(t, r, 1, nil, false)
			applyErr := r.Apply(t.Context(), rotators.ApplyRequest{Version: v1, Material: m1})
			if applyErr != nil && errors.Is(applyErr, rotators.ErrPermissionDenied) {
				t.Logf("without %s: Apply refused", priv)
				return
			}
			if applyErr != nil {
				t.Fatalf("Apply without %s: %v, want success or ErrPermissionDenied", priv, applyErr)
			}
			db := server.Open(v1.Metadata[MetadataUser], pw(m1))
			defer db.Close()
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			u, inUseErr := r.InUse(t.Context(), rotators.UsageRequest{Version: v1})
			if inUseErr == nil && !u.InUse() {
				t.Fatalf("without %s: InUse says idle with a connection open", priv)
			}
			if errors.Is(inUseErr, rotators.ErrPermissionDenied) {
				t.Logf("without %s: InUse refused", priv)
				return
			}
			revokeErr := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, EndSessions: true})
			if errors.Is(revokeErr, rotators.ErrPermissionDenied) {
				t.Logf("without %s: Revoke refused", priv)
				return
			}
			if err := conn.PingContext(context.Background()); err == nil {
				t.Fatalf("without %s: the connection survived a containment that said %v", priv, revokeErr)
			}
			t.Fatalf("without %s every step worked: Apply %v, InUse %v, Revoke %v", priv, applyErr, inUseErr, revokeErr)
		})
	}
}

// TestSingleRollbackRestoresTheKeptPassword walks the rollback's steps for the single
// strategy (rotation.Steps.Rollback): the failed version's revoke keeps the shared
// account open, the kept version's login is refused (its password was replaced), so the
// rollback re-applies it, and then it works and the failed one does not.
func TestSingleRollbackRestoresTheKeptPassword(t *testing.T) {
	cfg := newConfig(t, StrategySingle)
	r := mustNew(t, cfg)
	kept, km := version(t, r, 1, nil, true)
	failed, fm := version(t, r, 2, &kept, true)
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: failed, Keep: &kept}); err != nil {
		t.Fatalf("revoke of the failed version: %v", err)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: kept, Material: km}); !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test of the kept version before the re-apply: %v, want ErrCredentialRejected (which makes the rollback re-apply it)", err)
	}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: kept, Material: km}); err != nil {
		t.Fatal(err)
	}
	if err := login(t, cfg.User, pw(km)); err != nil {
		t.Fatalf("the kept password after the re-apply: %v", err)
	}
	if err := login(t, cfg.User, pw(fm)); err == nil {
		t.Fatal("the failed version's password still works")
	}
}

// TestAdoptAnAccountInUse: an account the application used before Keyturn, named as a
// twin and recorded by hand (metadata user only), is locked by the first rotation's
// revoke and re-keyed, with the role, by the second.
func TestAdoptAnAccountInUse(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	legacy := unique("legacy")
	if err := server.Exec(t.Context(), fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'legacy-password'", legacy),
		fmt.Sprintf("GRANT SELECT ON app.* TO '%s'@'%%'", legacy)); err != nil {
		t.Fatal(err)
	}
	cfg.Twins = [2]string{legacy, cfg.Role + "_b"}
	r := mustNew(t, cfg)
	v0 := secret.Version{Number: 1, Metadata: map[string]string{MetadataUser: legacy, MetadataUsername: legacy}}
	v1, m1 := version(t, r, 2, &v0, true)
	if v1.Metadata[MetadataUser] != cfg.Twins[1] {
		t.Fatalf("the first rotation re-keyed %q, want the other twin %q", v1.Metadata[MetadataUser], cfg.Twins[1])
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v0, Keep: &v1}); err != nil {
		t.Fatal(err)
	}
	if err := login(t, legacy, "legacy-password"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("the adopted account after the first revoke: %v, want it locked", err)
	}
	v2, m2 := version(t, r, 3, &v1, true)
	if v2.Metadata[MetadataUser] != legacy {
		t.Fatalf("the second rotation re-keyed %q, want %q", v2.Metadata[MetadataUser], legacy)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v2, Material: m2}); err != nil {
		t.Fatalf("the adopted account, re-keyed with the role: %v", err)
	}
	_ = m1
}

// TestTLS rotates on a server that refuses plain connections: verify-full with the
// server's CA works (Create, Test, Revoke), require works, and disable and verify-full
// with another CA are refused, holding no password in their errors.
func TestTLS(t *testing.T) {
	mariadbtest.Need(t, server)
	s, err := mariadbtest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.Exec(t.Context(), "CREATE DATABASE app", "CREATE TABLE app.items (x int)", "CREATE ROLE tr", "GRANT SELECT ON app.* TO tr"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdmin(t.Context(), "tadmin", adminPass, "tr"); err != nil {
		t.Fatal(err)
	}
	base := Config{Host: s.Host, Port: s.Port, Role: "tr", AdminUser: "tadmin", AdminPassword: secret.NewSensitive(adminPass),
		CheckQuery: "SELECT count(*) FROM app.items", ConnectTimeout: 5 * time.Second}
	verify := base
	verify.TLS, verify.CAPEM = TLSVerifyFull, s.CAPEM
	r := mustNew(t, verify)
	v1, m1 := version(t, r, 1, nil, true)
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v1, Material: m1}); err != nil {
		t.Fatalf("Test over verify-full: %v", err)
	}
	v2, m2 := version(t, r, 2, &v1, true)
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatalf("Revoke over verify-full: %v", err)
	}
	require := base
	require.TLS = TLSRequire
	if err := mustNew(t, require).Test(t.Context(), rotators.TestRequest{Version: v2, Material: m2}); err != nil {
		t.Fatalf("Test over require: %v", err)
	}
	other, err := mariadbtest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	otherCA := other.CAPEM
	_ = other.Stop()
	wrongCA := base
	wrongCA.TLS, wrongCA.CAPEM = TLSVerifyFull, otherCA
	plain := base
	plain.TLS = TLSDisable
	for name, cfg := range map[string]Config{"another CA": wrongCA, "no TLS": plain} {
		r := mustNew(t, cfg)
		v, m := version(t, r, 3, &v2, false)
		err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
		if err == nil {
			t.Errorf("%s: Apply succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), pw(m)) || strings.Contains(err.Error(), adminPass) {
			t.Errorf("%s: the error holds a password", name)
		}
		t.Logf("%s: %v", name, err)
	}
}
