package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// readOnlyPolicy is the access docs/agent.md says the agent needs on Vault, for mount
// "secret": read on the data and the metadata (the version ledger), nothing else, and
// nothing at all on the staging prefix, where pending material lives.
const readOnlyPolicy = `
path "secret/data/prod/*"     { capabilities = ["read"] }
path "secret/metadata/prod/*" { capabilities = ["read"] }
`

// TestVaultWithReadOnlyToken runs the agent on a real Vault with a token that can only
// read: it renders what the worker's store promoted, follows a promotion, and keeps the
// file when Vault goes away. The token comes from token_file, never the YAML.
func TestVaultWithReadOnlyToken(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Options{})
	st, err := vaultkv.New(t.Context(), vaultkv.Config{Address: srv.Addr, Auth: vaultkv.Auth{Token: secret.NewSensitive(srv.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := srv.Client(t)
	if err := c.Sys().PutPolicyWithContext(t.Context(), "keyturn-agent", readOnlyPolicy); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{"keyturn-agent"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tok.Auth.ClientToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	const id = secret.ID("prod/orders-db/app")
	first, second := canary(t), canary(t)
	promote(t, st, id, "v1", first)

	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_ADDR", srv.Addr) // the address comes from the environment, as documented
	dest := filepath.Join(dir, "db.json")
	cfg, err := Parse(filepath.Join(dir, "agent.yaml"), []byte("store: {type: vault, token_file: "+tokenFile+"}\ntemplates:\n  - {secret: "+string(id)+", destination: "+dest+", format: json}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(t.Context(), cfg.Store)
	if err != nil {
		t.Fatalf("open Vault with the read-only token: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	logs := &syncBuffer{}
	a, err := New(cfg, src, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r := a.Pass(ctx); len(r.Written) != 1 || r.Failed != 0 {
		t.Fatalf("first pass = %+v\n%s", r, logs)
	}
	if !strings.Contains(readFile(t, dest), `"password": "`+first+`"`) {
		t.Fatal("the file does not hold version 1's password")
	}
	promote(t, st, id, "v2", second)
	if r := a.Pass(ctx); len(r.Written) != 1 || r.Failed != 0 {
		t.Fatalf("pass after the promotion = %+v\n%s", r, logs)
	}
	if !strings.Contains(readFile(t, dest), `"password": "`+second+`"`) {
		t.Fatal("the file does not hold version 2's password")
	}
	srv.Stop()
	if r := a.Pass(ctx); r.Stale != 1 || len(r.Written) != 0 {
		t.Fatalf("pass with Vault down = %+v", r)
	}
	if !strings.Contains(readFile(t, dest), second) {
		t.Fatal("the file lost its content while Vault was down")
	}
	if !strings.Contains(logs.String(), "cannot read the store; files are kept") {
		t.Fatalf("log does not report the outage:\n%s", logs)
	}
	noMaterial(t, "the agent's log", logs.String(), first, second, tok.Auth.ClientToken, srv.Token)
}
