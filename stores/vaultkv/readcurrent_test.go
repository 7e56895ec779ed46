package vaultkv

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// consumerStore opens a store as an application would: with a token whose policy grants
// read on the consumer paths under prefix and nothing under the staging prefix.
func consumerStore(t *testing.T, root *api.Client, addr, prefix string) *Store {
	t.Helper()
	name := "consumer-" + strings.ReplaceAll(prefix, "/", "-")
	policy := `
path "secret/data/` + prefix + `/*"     { capabilities = ["read"] }
path "secret/metadata/` + prefix + `/*" { capabilities = ["read"] }
`
	if err := root.Sys().PutPolicyWithContext(t.Context(), name, policy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	tok, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{name}})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return openStore(t, Config{Address: addr, Auth: Auth{Token: secret.NewSensitive(tok.Auth.ClientToken)}})
}

// expectCurrent checks what ReadCurrent gives, by value, without printing it.
func expectCurrent(t *testing.T, s *Store, id secret.ID, token secret.VersionToken, password string) secret.Version {
	t.Helper()
	v, m, err := s.ReadCurrent(t.Context(), id)
	if err != nil {
		t.Fatalf("ReadCurrent: %v", err)
	}
	if v.Token != token || len(m) != 1 || !m["password"].Equal(secret.NewSensitive(password)) {
		t.Fatalf("ReadCurrent gave %s with %d fields, want %s and its password", v.Token, len(m), token)
	}
	if len(v.Stages) != 1 || v.Stages[0] != secret.StageCurrent {
		t.Fatalf("ReadCurrent gave stages %v", v.Stages)
	}
	return v
}

// With a policy that grants nothing on the staging prefix, ReadCurrent reads the current
// version, never a pending one; Read, which needs the staging document, is refused.
func TestReadCurrentWithoutAccessToStaging(t *testing.T) {
	srv := server(t)
	w, root := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "readcurrent")
	prefix, _, _ := strings.Cut(string(id), "/")
	c := consumerStore(t, root, srv.Addr, prefix)

	if _, _, err := c.ReadCurrent(t.Context(), id); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadCurrent of a secret never written: %v, want ErrNotFound", err)
	}
	stage(t, w, id, "v1", pw("one"), map[string]string{"username": "blue"})
	if _, _, err := c.ReadCurrent(t.Context(), id); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadCurrent with only a pending version: %v, want ErrNotFound", err)
	}
	promote(t, w, id, "v1")
	v1 := expectCurrent(t, c, id, "v1", "one")
	if v1.Metadata["username"] != "blue" || v1.Number < 1 {
		t.Fatalf("ReadCurrent gave metadata %v, number %d", v1.Metadata, v1.Number)
	}

	stage(t, w, id, "v2", pw("two"), map[string]string{"username": "green"})
	expectCurrent(t, c, id, "v1", "one") // pending is never served
	promote(t, w, id, "v2")
	if v := expectCurrent(t, c, id, "v2", "two"); v.Metadata["username"] != "green" || v.Number <= v1.Number {
		t.Fatalf("after the second promote: metadata %v, number %d", v.Metadata, v.Number)
	}

	// The consumer's token really has no access to staging: the full read path fails.
	if _, _, err := c.Read(t.Context(), id, secret.StageCurrent); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Read with the consumer policy: %v, want ErrPermissionDenied", err)
	}
}

// A promotion caught between its write to the consumer path and its ledger entry: the
// worker's Read already reports the new version (from the claim in the staging
// document); a consumer, who cannot read the claim, keeps the version that was current
// when the promotion began, which still works, until the ledger entry lands.
func TestReadCurrentDuringAHalfFinishedPromotion(t *testing.T) {
	srv := server(t)
	w, root := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "readcurrent-window")
	prefix, _, _ := strings.Cut(string(id), "/")
	c := consumerStore(t, root, srv.Addr, prefix)

	stage(t, w, id, "v1", pw("one"), nil)
	promote(t, w, id, "v1")
	stage(t, w, id, "v2", pw("two"), nil)
	claim(t, w, id, "v2", true) // the worker "crashed" after writing the consumer path

	expectRead(t, w, id, secret.StageCurrent, "v2", pw("two"))
	expectCurrent(t, c, id, "v1", "one")

	promote(t, w, id, "v2") // the retried activity finishes the promotion
	expectCurrent(t, c, id, "v2", "two")
}

// A consumer path written outside Keyturn has no ledger entry: the consumer keeps the
// last version Keyturn wrote. A deleted current version is not served at all.
func TestReadCurrentOverOutsideWritesAndDeletes(t *testing.T) {
	srv := server(t)
	w, root := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "readcurrent-outside")
	prefix, _, _ := strings.Cut(string(id), "/")
	c := consumerStore(t, root, srv.Addr, prefix)

	stage(t, w, id, "v1", pw("one"), nil)
	promote(t, w, id, "v1")
	if _, err := root.Logical().WriteWithContext(t.Context(), "secret/data/"+string(id), map[string]any{"data": map[string]any{"password": "by-hand"}}); err != nil {
		t.Fatalf("outside write: %v", err)
	}
	expectCurrent(t, c, id, "v1", "one")

	stage(t, w, id, "v2", pw("two"), nil)
	promote(t, w, id, "v2")
	expectCurrent(t, c, id, "v2", "two")

	_, kv := consumer(t, root, id)
	if _, err := root.Logical().WriteWithContext(t.Context(), "secret/delete/"+string(id), map[string]any{"versions": []int{kv}}); err != nil {
		t.Fatalf("delete KV version %d: %v", kv, err)
	}
	if _, _, err := c.ReadCurrent(t.Context(), id); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadCurrent of a deleted current version: %v, want ErrNotFound", err)
	}
}
