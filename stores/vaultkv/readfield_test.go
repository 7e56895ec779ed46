package vaultkv

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func TestReadField(t *testing.T) {
	srv := server(t)
	root := srv.Client(t)
	ctx := t.Context()
	id := uniqueID(t, "admin")
	if _, err := root.KVv2("secret").Put(ctx, string(id), map[string]any{"password": "admin-pw", "port": 5432}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	v1 := strings.ReplaceAll(string(uniqueID(t, "kv1")), "/", "-")
	if err := root.Sys().MountWithContext(ctx, v1, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatalf("mount kv v1: %v", err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, v1+"/admin", map[string]any{"password": "v1-pw"}); err != nil {
		t.Fatalf("seed kv v1: %v", err)
	}

	// A least-privilege token reads as well as root does.
	policy := keyturnPolicy(t, root)
	if err := root.Sys().PutPolicyWithContext(ctx, policy+"-v1", `path "`+v1+`/*" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	tok, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{policy, policy + "-v1"}, TTL: "10m"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	for name, token := range map[string]string{"root": srv.Token, "policy": tok.Auth.ClientToken} {
		s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(token)}})
		for path, want := range map[string]struct{ field, value string }{
			"secret/" + string(id):  {"password", "admin-pw"},
			"/secret/" + string(id): {"port", "5432"},
			v1 + "/admin":           {"password", "v1-pw"},
		} {
			got, err := s.ReadField(ctx, path, want.field)
			if err != nil {
				t.Fatalf("%s: ReadField(%s, %s): %v", name, path, want.field, err)
			}
			if !got.Equal(secret.NewSensitive(want.value)) {
				t.Fatalf("%s: ReadField(%s, %s) gave another value", name, path, want.field)
			}
		}
	}

	s := newStore(t, srv)
	for path, field := range map[string]string{
		"secret/" + string(id):           "nope",
		"secret/" + string(id) + "-none": "password",
		"secret/data/" + string(id):      "password",
	} {
		_, err := s.ReadField(ctx, path, field)
		if !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("ReadField(%s, %s): %v, want ErrNotFound", path, field, err)
		}
		if strings.Contains(err.Error(), "admin-pw") {
			t.Fatal("the error shows the secret")
		}
		if strings.HasPrefix(path, "secret/data/") && !strings.Contains(err.Error(), "without data/") {
			t.Fatalf("ReadField(%s) error %q has no hint about data/", path, err)
		}
	}
}
