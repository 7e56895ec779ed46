package consumer

import (
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// consumerPolicy is the access the package doc says a consumer needs, for mount
// "secret": read on the consumer paths, nothing on the staging prefix.
const consumerPolicy = `
path "secret/data/prod/*"     { capabilities = ["read"] }
path "secret/metadata/prod/*" { capabilities = ["read"] }
`

// consumerToken creates a token holding only consumerPolicy.
func consumerToken(t *testing.T, c *api.Client) secret.Sensitive {
	t.Helper()
	if err := c.Sys().PutPolicyWithContext(t.Context(), "keyturn-consumer", consumerPolicy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	tok, err := c.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		Policies: []string{"keyturn-consumer"}, NoDefaultPolicy: false,
	})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return secret.NewSensitive(tok.Auth.ClientToken)
}

func TestVaultStore(t *testing.T) {
	// A server of its own: the test stops it.
	srv := vaulttest.Start(t, vaulttest.Options{})
	st, err := vaultkv.New(t.Context(), vaultkv.Config{
		Address: srv.Addr, Auth: vaultkv.Auth{Token: secret.NewSensitive(srv.Token)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	src, err := OpenVault(t.Context(), Vault{Address: srv.Addr, Token: consumerToken(t, srv.Client(t))})
	if err != nil {
		t.Fatalf("OpenVault with the consumer policy: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })

	runStoreCase(t, storeCase{st: st, src: src, id: "prod/orders-db/app", down: srv.Stop})
}
