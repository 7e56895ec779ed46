package vaultkv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// keyturnPolicy installs policy.hcl on srv under a unique name and returns the name.
func keyturnPolicy(t *testing.T, c *api.Client) string {
	t.Helper()
	name := "keyturn-" + strings.ReplaceAll(string(uniqueID(t, "p")), "/", "-")
	if err := c.Sys().PutPolicyWithContext(t.Context(), name, Policy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	return name
}

// rotation runs a rotation's store calls and checks what consumers see after each.
func rotation(t *testing.T, s *Store, c *api.Client) {
	t.Helper()
	id := uniqueID(t, "rotation")
	stage(t, s, id, "run-1", pw("one"), map[string]string{"username": "blue"})
	promote(t, s, id, "run-1")
	v2 := stage(t, s, id, "run-2", pw("two"), map[string]string{"username": "green"})
	if _, m, err := s.ReadVersion(t.Context(), id, v2.Token); err != nil || !m["password"].Equal(secret.NewSensitive("two")) {
		t.Fatalf("ReadVersion of the pending version: %v", err)
	}
	promote(t, s, id, "run-2")
	if data, _ := consumer(t, c, id); data["password"] != "two" || data["username"] != "green" {
		t.Fatal("consumers do not see run-2")
	}
	expectRead(t, s, id, secret.StagePrevious, "run-1", pw("one"))
	stage(t, s, id, "run-3", pw("three"), nil)
	if err := s.DiscardPending(t.Context(), id, "run-3"); err != nil {
		t.Fatalf("DiscardPending: %v", err)
	}
	if vs, err := s.ListVersions(t.Context(), id); err != nil || len(vs) != 2 {
		t.Fatalf("ListVersions gave %d versions (%v), want 2", len(vs), err)
	}
}

func TestAppRoleLoginWithThePackagePolicy(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	policy := keyturnPolicy(t, root)
	role := strings.TrimPrefix(policy, "keyturn-")
	roleID, secretID := appRole(t, root, role, map[string]any{"token_policies": []string{policy}, "token_ttl": "1m"})

	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Method: AuthAppRole, RoleID: roleID, SecretID: secret.NewSensitive(secretID)}})
	rotation(t, s, root)

	_, err := New(t.Context(), Config{Address: srv.Addr, Auth: Auth{Method: AuthAppRole, RoleID: roleID, SecretID: secret.NewSensitive("wrong")}})
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("login with a wrong secret ID: %v; want a refused login naming the address", err)
	}
}

// appRole creates an AppRole role and returns its role ID and a new secret ID.
func appRole(t *testing.T, c *api.Client, name string, settings map[string]any) (string, string) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+name, settings); err != nil {
		t.Fatalf("create role: %v", err)
	}
	rid, err := c.Logical().ReadWithContext(ctx, "auth/approle/role/"+name+"/role-id")
	if err != nil {
		t.Fatalf("read role id: %v", err)
	}
	sid, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+name+"/secret-id", nil)
	if err != nil {
		t.Fatalf("create secret id: %v", err)
	}
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}

func TestShortLivedTokenIsRenewed(t *testing.T) {
	t.Parallel()
	srv := server(t)
	root := srv.Client(t)
	renewable := true
	tok, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		Policies:       []string{keyturnPolicy(t, root)},
		TTL:            "5s",
		ExplicitMaxTTL: "1h",
		Renewable:      &renewable,
	})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(tok.Auth.ClientToken)}})
	time.Sleep(12 * time.Second)
	rotation(t, s, root)
}

func TestLoginMethodLogsInAgainAtMaxTTL(t *testing.T) {
	t.Parallel()
	srv := server(t)
	root := srv.Client(t)
	policy := keyturnPolicy(t, root)
	roleID, secretID := appRole(t, root, strings.TrimPrefix(policy, "keyturn-")+"-short", map[string]any{
		"token_policies": []string{policy}, "token_ttl": "4s", "token_max_ttl": "6s", "secret_id_num_uses": 0,
	})
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Method: AuthAppRole, RoleID: roleID, SecretID: secret.NewSensitive(secretID)}})
	first := s.client.Token()
	// One max TTL and a bit: the store has logged in again, and its new token has most of
	// its life left for the rotation below. The watcher re-logs in only a fraction of the
	// TTL before expiry, so with seconds-long test TTLs a loaded machine must not land the
	// rotation on a token's last moment (real TTLs are minutes or hours).
	time.Sleep(7 * time.Second)
	if s.client.Token() == first {
		t.Fatal("the store still uses its first token after that token's max TTL")
	}
	rotation(t, s, root)
}

func TestJWTLogin(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	ctx := t.Context()
	policy := keyturnPolicy(t, root)
	mount := "jwt-" + strings.TrimPrefix(policy, "keyturn-vaultkv-test-p-")
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatalf("enable jwt auth: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for path, body := range map[string]map[string]any{
		"auth/" + mount + "/config": {"jwt_validation_pubkeys": []string{pub}, "bound_issuer": "keyturn-test"},
	} {
		if _, err := root.Logical().WriteWithContext(ctx, path, body); err != nil {
			t.Fatalf("configure %s: %v", path, err)
		}
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/"+mount+"/role/worker", map[string]any{
		"role_type": "jwt", "bound_audiences": []string{"vault"}, "user_claim": "sub",
		"token_policies": []string{policy}, "token_ttl": "1m",
	}); err != nil {
		t.Fatalf("create jwt role: %v", err)
	}

	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte(signES256(t, key, map[string]any{
		"iss": "keyturn-test", "sub": "keyturn-worker", "aud": "vault",
		"iat": time.Now().Unix(), "nbf": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Method: AuthJWT, Role: "worker", JWTPath: jwtFile, MountPath: mount}})
	rotation(t, s, root)
}

// signES256 makes a compact JWS, enough for Vault's JWT auth with a static public key.
func signES256(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestPermissionDeniedSaysWhatToGrant(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	const readOnly = `
path "secret/data/*"     { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }
`
	name := "keyturn-read-only"
	if err := root.Sys().PutPolicyWithContext(t.Context(), name, readOnly); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	tok, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{name}, TTL: "10m"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(tok.Auth.ClientToken)}})
	id := uniqueID(t, "denied")
	_, err = s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: "v1", Material: pw("never-shown")})
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("StagePending with a read-only token: %v, want ErrPermissionDenied", err)
	}
	msg := err.Error()
	for _, want := range []string{"permission denied on secret/metadata/keyturn-pending/" + string(id), srv.Addr, "policy needs update", "package doc"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "never-shown") || strings.Contains(msg, tok.Auth.ClientToken) {
		t.Fatal("the error shows material or the token")
	}
	if errors.Is(err, stores.ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("permission denied also matches another kind: %v", err)
	}
}

func TestVaultDownThenRestartedKeepsData(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Options{DataDir: t.TempDir()})
	s := newStore(t, srv)
	id := uniqueID(t, "outage")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	stage(t, s, id, "v2", pw("two"), nil)

	srv.Stop()
	_, _, err := s.Read(t.Context(), id, secret.StageCurrent)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read with Vault down: %v; want ErrUnavailable and not ErrNotFound", err)
	}
	if msg := err.Error(); !strings.Contains(msg, srv.Addr) || !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "retry") {
		t.Fatalf("error %q does not name the address, say unreachable and that retrying is safe", msg)
	}
	if err := s.Promote(t.Context(), id, "v2"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Promote with Vault down: %v; want ErrUnavailable", err)
	}

	srv.Restart(t)
	expectRead(t, s, id, secret.StageCurrent, "v1", pw("one"))
	expectRead(t, s, id, secret.StagePending, "v2", pw("two"))
	promote(t, s, id, "v2")
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	expectRead(t, s, id, secret.StagePrevious, "v1", pw("one"))
}
