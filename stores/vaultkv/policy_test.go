package vaultkv

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/storetest"
)

// policyOnlyToken returns a token holding policy.hcl and nothing else: not root and not
// Vault's default policy, so every capability the store uses has to come from the file.
// Without the default policy the store cannot look the token up and so does not renew
// it (it logs that); a 1h TTL outlasts the suite.
func policyOnlyToken(t *testing.T, root *api.Client) string {
	t.Helper()
	sec, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		Policies:        []string{keyturnPolicy(t, root)},
		NoDefaultPolicy: true,
		TTL:             "1h",
	})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	if got := sec.Auth.Policies; !slices.Equal(got, sec.Auth.TokenPolicies) || len(got) != 1 {
		t.Fatalf("the token holds policies %v, want only the package policy", got)
	}
	return sec.Auth.ClientToken
}

// TestConformanceWithOnlyThePolicy runs the conformance suite with a store whose token
// holds only Policy: the policy is enough for every Store method the suite calls.
func TestConformanceWithOnlyThePolicy(t *testing.T) {
	srv := server(t)
	token := policyOnlyToken(t, srv.Client(t))
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(token)}})
	storetest.Run(t, func(t *testing.T) stores.Store { return s })
}

// TestThePolicyGrantsNoMore checks the other side: what Vault says the same kind of token
// may do on paths the store uses and on paths it does not, and that Vault refuses a
// request outside the policy when the store's own token makes it.
func TestThePolicyGrantsNoMore(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	token := policyOnlyToken(t, root)
	ctx := t.Context()

	// sys/capabilities asked with the root token: the token's capabilities as Vault
	// computes them from its policies, path by path.
	none := []string{"deny"}
	for path, want := range map[string][]string{
		// What the store uses, exactly as policy.hcl grants it.
		"secret/data/app/db":                     {"create", "read", "update"},
		"secret/metadata/app/db":                 {"patch", "read"},
		"secret/data/keyturn-pending/app/db":     {"create", "read", "update"},
		"secret/metadata/keyturn-pending/app/db": {"create", "update"},
		// No deleting, destroying or undeleting versions.
		"secret/delete/app/db":   none,
		"secret/destroy/app/db":  none,
		"secret/undelete/app/db": none,
		// Nothing outside the mount: other KV mounts, policies, tokens, auth methods.
		"kv/data/app/db":           none,
		"secret2/data/app/db":      none,
		"sys/policies/acl/keyturn": none,
		"sys/mounts/secret":        none,
		"auth/token/create":        none,
		"auth/token/lookup-self":   none, // the default policy's, not attached here
	} {
		got, err := root.Sys().CapabilitiesWithContext(ctx, token, path)
		if err != nil {
			t.Fatalf("capabilities on %s: %v", path, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("the token's capabilities on %s are %v, want %v", path, got, want)
		}
	}

	// And Vault enforces it: the store's token may rotate a secret but not delete it or
	// list the mount, and cannot write outside the mount (its own cubbyhole, a policy).
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(token)}})
	id := uniqueID(t, "scope")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	c := srv.Client(t)
	c.SetToken(token)
	for name, refused := range map[string]func() error{
		"delete the secret's metadata and all its versions": func() error {
			_, err := c.Logical().DeleteWithContext(ctx, "secret/metadata/"+string(id))
			return err
		},
		"list the mount": func() error {
			_, err := c.Logical().ListWithContext(ctx, "secret/metadata/vaultkv-test")
			return err
		},
		"write its own cubbyhole": func() error {
			_, err := c.Logical().WriteWithContext(ctx, "cubbyhole/scope", map[string]any{"x": "y"})
			return err
		},
		"widen its own policy": func() error {
			_, err := c.Logical().WriteWithContext(ctx, "sys/policies/acl/keyturn-widened", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`})
			return err
		},
	} {
		var re *api.ResponseError
		if err := refused(); !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
	expectRead(t, s, id, secret.StageCurrent, "v1", pw("one"))
}

// grant is one capability policy.hcl grants on one path.
type grant struct{ path, capability string }

var policyBlock = regexp.MustCompile(`path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]`)

// policyGrants lists every capability Policy grants, path by path.
func policyGrants(t *testing.T) []grant {
	t.Helper()
	var out []grant
	for _, m := range policyBlock.FindAllStringSubmatch(Policy, -1) {
		for _, c := range strings.Split(m[2], ",") {
			out = append(out, grant{m[1], strings.Trim(strings.TrimSpace(c), `"`)})
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d capabilities in policy.hcl; has its layout changed?", len(out))
	}
	return out
}

// policyWithout is Policy less one capability.
func policyWithout(g grant) string {
	return policyBlock.ReplaceAllStringFunc(Policy, func(block string) string {
		m := policyBlock.FindStringSubmatch(block)
		if m[1] != g.path {
			return block
		}
		var keep []string
		for _, c := range strings.Split(m[2], ",") {
			if c = strings.TrimSpace(c); c != `"`+g.capability+`"` {
				keep = append(keep, c)
			}
		}
		return strings.Replace(block, "["+m[2]+"]", "["+strings.Join(keep, ", ")+"]", 1)
	})
}

// tokenWith returns a token holding only the given policy text.
func tokenWith(t *testing.T, root *api.Client, policy string) string {
	t.Helper()
	name := "keyturn-" + strings.ReplaceAll(string(uniqueID(t, "less")), "/", "-")
	if err := root.Sys().PutPolicyWithContext(t.Context(), name, policy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	sec, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		Policies: []string{name}, NoDefaultPolicy: true, TTL: "10m",
	})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return sec.Auth.ClientToken
}

// twoRotations is what a worker does in a secret's first two rotations and a rollback
// check, plus a first stage of a second secret whose staging metadata a crashed worker
// left behind (Vault then calls the metadata write an update, not a create). It stops at
// the first error.
func twoRotations(t *testing.T, root *api.Client, s *Store) error {
	ctx := t.Context()
	id, crashed := uniqueID(t, "less"), uniqueID(t, "less-crashed")
	if _, err := root.Logical().WriteWithContext(ctx, "secret/metadata/keyturn-pending/"+string(crashed), map[string]any{"max_versions": 1}); err != nil {
		t.Fatalf("leave staging metadata behind: %v", err)
	}
	steps := []func() error{
		func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "v1", Material: pw("one")})
			return err
		},
		func() error { return s.Promote(ctx, id, "v1") },
		func() error { _, _, err := s.Read(ctx, id, secret.StageCurrent); return err },
		func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "v2", Material: pw("two")})
			return err
		},
		func() error { return s.Promote(ctx, id, "v2") },
		func() error { _, _, err := s.Read(ctx, id, secret.StagePrevious); return err },
		func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: crashed, Token: "v1", Material: pw("one")})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// grantedButUnused are the capabilities Policy keeps although the store, as written,
// never needs them, each with the reason it is kept.
var grantedButUnused = map[grant]string{
	// Vault's KV v2 calls a data write "create" only when the path has no metadata, and
	// the store always writes the staging path's metadata (max_versions = 1) before its
	// first data write. Dropping it would take no power away (create on the staging
	// metadata stays, and with it the same effect) but would tie operators' policies to
	// that order of writes.
	{"secret/data/keyturn-pending/*", "create"}: "the staging metadata is always written first",
}

// TestEveryCapabilityInThePolicyIsNeeded takes one capability at a time out of Policy
// and shows that a token holding the rest cannot do two ordinary rotations: nothing in
// the policy is there just in case, except what grantedButUnused lists and explains.
func TestEveryCapabilityInThePolicyIsNeeded(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	open := func(policy string) *Store {
		return openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(tokenWith(t, root, policy))}})
	}
	if err := twoRotations(t, root, open(Policy)); err != nil {
		t.Fatalf("with the whole policy: %v", err)
	}
	for _, g := range policyGrants(t) {
		err := twoRotations(t, root, open(policyWithout(g)))
		if why, ok := grantedButUnused[g]; ok {
			// Still true? Otherwise the exemption, and policy.hcl's comment, are stale.
			if err != nil {
				t.Errorf("without %s on %s: %v; the store now needs it (%s no longer holds): drop it from grantedButUnused", g.capability, g.path, err, why)
			}
			continue
		}
		if !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("without %s on %s: %v, want ErrPermissionDenied", g.capability, g.path, err)
			continue
		}
		t.Logf("without %s on %s: %v", g.capability, g.path, err)
	}
}
