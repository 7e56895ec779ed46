package redisacl

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// hashesOn returns the user's password hashes on a node, read as the superuser.
func hashesOn(t *testing.T, s *redistest.Server, user string) []string {
	t.Helper()
	c := s.Super()
	defer c.Close()
	h, _, err := passwords(t.Context(), c, user)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A rotation leaves no window: the old password works until its revoke, beside the new.
func TestBothPasswordsWorkUntilTheRevoke(t *testing.T) {
	cfg := newUser(t)
	r := mustNew(t, cfg)
	old, om := generate(t, r, 1, true)
	next, nm := generate(t, r, 2, true)
	wantLogins(t, cfg.User, pw(om), true)
	wantLogins(t, cfg.User, pw(nm), true)
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: old, Keep: &next}); err != nil {
		t.Fatal(err)
	}
	wantLogins(t, cfg.User, pw(om), false)
	wantLogins(t, cfg.User, pw(nm), true)
	for _, s := range servers {
		if got := hashesOn(t, s, cfg.User); len(got) != 1 || got[0] != hashOf(pw(nm)) {
			t.Errorf("%s holds %d hashes after the revoke, want only the new password's", s.Addr, len(got))
		}
	}
}

// A node that is down fails Apply, and the nodes the call reached lose the password again:
// the user is as it was, and the current password works everywhere. Once the node is
// back, Apply succeeds, and the ACL file the node reloads on restart keeps the password.
func TestApplyWithANodeDown(t *testing.T) {
	ss := nodes(t)
	down := startExtra(t)
	cfg := newUser(t)
	if err := down.SetUser(t.Context(), cfg.User, "on", "+ping"); err != nil {
		t.Fatal(err)
	}
	if err := down.CreateAdmin(t.Context(), adminName, adminPass); err != nil {
		t.Fatal(err)
	}
	cfg.Nodes = append(cfg.Nodes, down.Addr)
	r := mustNew(t, cfg)
	cur, cm := generate(t, r, 1, true)
	_ = cur

	down.Kill()
	next, nm := generate(t, r, 2, false)
	err := r.Apply(t.Context(), rotators.ApplyRequest{Version: next, Material: nm})
	if err == nil || !strings.Contains(err.Error(), down.Addr) {
		t.Fatalf("Apply with %s down: %v, want an error naming it", down.Addr, err)
	}
	if errors.Is(err, rotators.ErrInvalidConfig) || errors.Is(err, rotators.ErrPermissionDenied) {
		t.Errorf("Apply with a node down: %v is final; a retry may find the node back", err)
	}
	if strings.Contains(err.Error(), pw(nm)) || strings.Contains(err.Error(), hashOf(pw(nm))) {
		t.Error("the error holds the password or its hash")
	}
	for _, s := range ss {
		if got := hashesOn(t, s, cfg.User); slices.Contains(got, hashOf(pw(nm))) || !slices.Contains(got, hashOf(pw(cm))) {
			t.Errorf("%s after the failed Apply: new password kept %v, current kept %v; want only the current", s.Addr,
				slices.Contains(got, hashOf(pw(nm))), slices.Contains(got, hashOf(pw(cm))))
		}
	}
	wantLogins(t, cfg.User, pw(cm), true)

	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: next, Material: nm}); err != nil {
		t.Fatalf("Apply once the node is back: %v", err)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: next, Material: nm}); err != nil {
		t.Fatalf("Test once the node is back: %v", err)
	}
	// The node reloads its ACL file on restart: ACL SAVE kept both passwords there.
	down.Kill()
	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pw(cm), pw(nm)} {
		if err := login(t, down, cfg.User, p); err != nil {
			t.Errorf("after a restart of %s: %v; ACL SAVE did not keep the password", down.Addr, err)
		}
	}
}

// connections lists the user's connections on every node, read as the superuser.
func connections(t *testing.T, user string) []rotators.Use {
	t.Helper()
	var out []rotators.Use
	for _, s := range servers {
		c := s.Super()
		list, err := c.ClientList(t.Context()).Result()
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseClients(list, user, s.Addr, time.Now())...)
	}
	return out
}

// startExtra starts a node of the test's own, with the admin, stopped at the end.
func startExtra(t *testing.T) *redistest.Server {
	t.Helper()
	s, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Containment removes every password, the ones Keyturn never made too, and ends the
// user's connections on every node.
func TestContainEndsEverything(t *testing.T) {
	cfg := newUser(t)
	r := mustNew(t, cfg)
	cur, cm := generate(t, r, 1, true)
	for _, s := range servers {
		if err := s.SetUser(t.Context(), cfg.User, ">set-by-hand"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		c := s.Login(cfg.User, pw(cm))
		if err := c.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if n := len(connections(t, cfg.User)); n != len(servers) {
		t.Fatalf("%d connections of the user before containment, want %d", n, len(servers))
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: cur, EndSessions: true}); err != nil {
		t.Fatalf("contain: %v", err)
	}
	wantLogins(t, cfg.User, pw(cm), false)
	wantLogins(t, cfg.User, "set-by-hand", false)
	for _, s := range servers {
		if got := hashesOn(t, s, cfg.User); len(got) != 0 {
			t.Errorf("%s keeps %d passwords after containment", s.Addr, len(got))
		}
	}
	if got := connections(t, cfg.User); len(got) != 0 {
		t.Errorf("containment left %d connections of the user: %+v", len(got), got)
	}
	// Again: nothing left to do is success.
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: cur, EndSessions: true}); err != nil {
		t.Fatalf("contain again: %v", err)
	}
}

// Test runs the declared check as the user; one it may not run is ErrCheckFailed, and one
// that writes is refused before it runs.
func TestCheck(t *testing.T) {
	cfg := newUser(t)
	for _, c := range []struct {
		check []string
		want  error
	}{
		{[]string{"GET", "app:health"}, nil},
		{[]string{"GET", "other:health"}, rotators.ErrCheckFailed},
		{[]string{"EXISTS", "app:health"}, rotators.ErrCheckFailed},
		{[]string{"SET", "app:health", "x"}, rotators.ErrInvalidConfig},
		{[]string{"NOSUCHCOMMAND"}, rotators.ErrInvalidConfig},
	} {
		cfg.Check = c.check
		r := mustNew(t, cfg)
		v, m := generate(t, r, 1, true)
		err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m})
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("check %v: Test = %v, want %v", c.check, err, c.want)
		}
	}
}

// Apply refuses a user that does not exist, instead of creating one with no rules.
func TestApplyNeedsTheUser(t *testing.T) {
	cfg := newUser(t)
	cfg.User = unique("missing")
	r := mustNew(t, cfg)
	v, m := generate(t, r, 1, false)
	err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Apply for a missing user: %v", err)
	}
	c := servers[0].Super()
	defer c.Close()
	if _, exists, _ := passwords(t.Context(), c, cfg.User); exists {
		t.Error("Apply created the user")
	}
}

// A wrong admin password is final, and says which node refused it.
func TestWrongAdminPassword(t *testing.T) {
	cfg := newUser(t)
	cfg.AdminPassword = secret.NewSensitive("not-the-admin-password")
	r := mustNew(t, cfg)
	v, m := generate(t, r, 1, false)
	err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	if !errors.Is(err, rotators.ErrPermissionDenied) || !strings.Contains(err.Error(), servers[0].Addr) {
		t.Fatalf("Apply with a wrong admin password: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-admin-password") {
		t.Error("the error holds the admin password")
	}
}

// Revoke refuses a version of another user, and one without a password_id.
func TestRevokeRefusesWhatItCannotTell(t *testing.T) {
	cfg := newUser(t)
	r := mustNew(t, cfg)
	v, _ := generate(t, r, 1, true)
	other := v
	other.Metadata = map[string]string{MetadataUser: "someone_else", MetadataPasswordID: v.Metadata[MetadataPasswordID]}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: other}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("Revoke of another user's version: %v", err)
	}
	bare := v
	bare.Metadata = map[string]string{MetadataUser: cfg.User}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: bare}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("Revoke of a version without %s: %v", MetadataPasswordID, err)
	}
}

// InUse reports the user's connections opened before the promotion, on every node.
func TestInUse(t *testing.T) {
	cfg := newUser(t)
	r := mustNew(t, cfg)
	old, om := generate(t, r, 1, true)
	if err := servers[1].SetUser(t.Context(), cfg.User, "+client|setname"); err != nil {
		t.Fatal(err)
	}
	c := servers[1].Login(cfg.User, pw(om))
	defer c.Close()
	if err := c.Do(t.Context(), "CLIENT", "SETNAME", "orders-api").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // CLIENT LIST counts age in whole seconds
	promoted := time.Now()
	u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: old, Since: promoted})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Uses) != 1 || u.Uses[0].Application != "orders-api" || !strings.Contains(u.Uses[0].Detail, servers[1].Addr) {
		t.Fatalf("InUse = %+v, want the one connection named orders-api on %s", u.Uses, servers[1].Addr)
	}
	if !strings.Contains(u.Checked, "CLIENT LIST") {
		t.Errorf("Checked = %q", u.Checked)
	}
	_ = c.Close()
	u, err = r.InUse(t.Context(), rotators.UsageRequest{Version: old, Since: promoted})
	if err != nil || u.InUse() {
		t.Fatalf("after the client closed: %+v, %v; want idle", u.Uses, err)
	}
}

// TestEveryAdminRuleIsNeeded takes each of the admin's rules away in turn and runs what a
// rotation, the revoke gate and a containment ask of the nodes: some call must be refused
// for lack of it, as rotators.ErrPermissionDenied. With all of them (the conformance
// suite's admin) nothing is refused.
func TestEveryAdminRuleIsNeeded(t *testing.T) {
	ss := nodes(t)
	for _, rule := range redistest.AdminRules {
		if rule == "-@all" {
			continue
		}
		t.Run(rule, func(t *testing.T) {
			cfg := newUser(t)
			cfg.Check = []string{"GET", "app:health"}
			admin := unique("admin")
			var rules []string
			for _, r := range redistest.AdminRules {
				if r != rule {
					rules = append(rules, r)
				}
			}
			for _, s := range ss {
				if err := s.SetUser(t.Context(), admin, append([]string{"reset", "on", ">" + adminPass}, rules...)...); err != nil {
					t.Fatal(err)
				}
			}
			cfg.AdminUser = admin
			r := mustNew(t, cfg)
			g1, _ := r.Generate(t.Context(), rotators.GenerateRequest{})
			v1 := version(1, g1)
			g2, _ := r.Generate(t.Context(), rotators.GenerateRequest{Current: &v1})
			v2 := version(2, g2)
			calls := []struct {
				name string
				call func() error
			}{
				{"Apply", func() error { return r.Apply(t.Context(), rotators.ApplyRequest{Version: v1, Material: g1.Material}) }},
				{"Apply next", func() error { return r.Apply(t.Context(), rotators.ApplyRequest{Version: v2, Material: g2.Material}) }},
				{"Test", func() error { return r.Test(t.Context(), rotators.TestRequest{Version: v2, Material: g2.Material}) }},
				{"InUse", func() error {
					_, err := r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Since: time.Now()})
					return err
				}},
				{"Revoke", func() error { return r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}) }},
				{"Contain", func() error { return r.Revoke(t.Context(), rotators.RevokeRequest{Version: v2, EndSessions: true}) }},
			}
			var refused []string
			for _, c := range calls {
				err := c.call()
				if errors.Is(err, rotators.ErrPermissionDenied) {
					refused = append(refused, c.name)
				} else if err != nil && !errors.Is(err, rotators.ErrCredentialRejected) {
					// Test after an Apply that was refused finds no password to log in with.
					t.Errorf("%s without %s: %v, want success, ErrPermissionDenied or a rejected credential", c.name, rule, err)
				}
			}
			if len(refused) == 0 {
				t.Fatalf("without %s every call succeeded: the rule is not needed", rule)
			}
			t.Logf("without %s: %s refused", rule, strings.Join(refused, ", "))
		})
	}
}

// TestTLS rotates a user on a node that speaks TLS only: with the node's CA it works,
// with another CA or without TLS it fails without holding a password.
func TestTLS(t *testing.T) {
	nodes(t)
	s, err := redistest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.CreateAdmin(t.Context(), adminName, adminPass); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUser(t.Context(), "tls_app", "on", "+ping"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Nodes: []string{s.Addr}, User: "tls_app", AdminUser: adminName, AdminPassword: secret.NewSensitive(adminPass),
		TLS: true, CAPEM: s.CAPEM, Timeout: 2 * time.Second}
	r := mustNew(t, cfg)
	v, m := generate(t, r, 1, true)
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Fatalf("Test over TLS: %v", err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatalf("Revoke over TLS: %v", err)
	}

	other, err := redistest.StartTLS() // its CA signed nothing s presents
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Stop()
	wrongCA := cfg
	wrongCA.CAPEM = other.CAPEM
	plain := cfg
	plain.TLS, plain.CAPEM = false, nil
	for name, c := range map[string]Config{"another CA": wrongCA, "no TLS": plain} {
		r := mustNew(t, c)
		v, m := generate(t, r, 2, false)
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

// TestRetrySavesTheACLFile: a step whose change reached a node's memory but not its ACL
// file (the save failed) is done again by its retry, save included, so a restart cannot
// lose a new password or bring back a revoked one. The test stands in for the failed
// save by rewriting the file as it was before the change.
func TestRetrySavesTheACLFile(t *testing.T) {
	cfg := newUser(t)
	r := mustNew(t, cfg)
	s := servers[0]
	path := filepath.Join(s.Dir, "users.acl")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v1, m1 := generate(t, r, 1, true)
	hash := hashOf(pw(m1))
	if !strings.Contains(s.ACLFile(), hash) {
		t.Fatal("Apply did not save the new password's hash")
	}
	if err := os.WriteFile(path, before, 0o600); err != nil { // the save "failed"
		t.Fatal(err)
	}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v1, Material: m1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.ACLFile(), hash) {
		t.Fatal("a retried Apply found the password in memory and did not save it")
	}
	withHash := s.ACLFile()
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.ACLFile(), hash) {
		t.Fatal("Revoke did not save the removal")
	}
	if err := os.WriteFile(path, []byte(withHash), 0o600); err != nil { // the save "failed"
		t.Fatal(err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.ACLFile(), hash) {
		t.Fatal("a retried Revoke found nothing to remove in memory and did not save")
	}
}
