package vaultkv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// shared is one Vault server for the tests that do not stop or reconfigure it.
var shared *vaulttest.Server

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }

// server returns the shared Vault server, or skips without one.
func server(t *testing.T) *vaulttest.Server {
	t.Helper()
	return vaulttest.Shared(t, shared)
}

// newStore opens a store on srv with its root token; Close runs at cleanup.
func newStore(t *testing.T, srv *vaulttest.Server) *Store {
	t.Helper()
	return openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(srv.Token)}})
}

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// uniqueID makes a secret ID no other test uses.
func uniqueID(t *testing.T, prefix string) secret.ID {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return secret.ID("vaultkv-test/" + prefix + "-" + hex.EncodeToString(b))
}

func pw(value string) secret.Material {
	return secret.Material{"password": secret.NewSensitive(value)}
}

func stage(t *testing.T, s *Store, id secret.ID, token secret.VersionToken, m secret.Material, meta map[string]string) secret.Version {
	t.Helper()
	v, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: token, Material: m, Metadata: meta})
	if err != nil {
		t.Fatalf("StagePending(%s): %v", token, err)
	}
	return v
}

func promote(t *testing.T, s *Store, id secret.ID, token secret.VersionToken) {
	t.Helper()
	if err := s.Promote(t.Context(), id, token); err != nil {
		t.Fatalf("Promote(%s): %v", token, err)
	}
}

// consumer reads the consumer path as a consumer does: the current KV version's data and
// its version number. It returns nil data when the path has never been written.
func consumer(t *testing.T, c *api.Client, id secret.ID) (map[string]any, int) {
	t.Helper()
	sec, err := c.Logical().ReadWithContext(t.Context(), "secret/data/"+string(id))
	if err != nil {
		t.Fatalf("read consumer path: %v", err)
	}
	if sec == nil {
		return nil, 0
	}
	data, _ := sec.Data["data"].(map[string]any)
	md, _ := sec.Data["metadata"].(map[string]any)
	return data, intField(md["version"])
}

// expectRead checks the material Read gives for stage, by value, without printing it.
func expectRead(t *testing.T, s *Store, id secret.ID, stage secret.Stage, token secret.VersionToken, want secret.Material) {
	t.Helper()
	v, got, err := s.Read(t.Context(), id, stage)
	if err != nil {
		t.Fatalf("Read(%s): %v", stage, err)
	}
	if v.Token != token {
		t.Fatalf("Read(%s) gave %s, want %s", stage, v.Token, token)
	}
	if len(got) != len(want) {
		t.Fatalf("Read(%s) gave %d fields, want %d", stage, len(got), len(want))
	}
	for k, w := range want {
		if !got[k].Equal(w) {
			t.Fatalf("Read(%s): field %s differs", stage, k)
		}
	}
}
