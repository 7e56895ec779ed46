package binding

import (
	"context"
	"testing"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// An httpapi secret's rotator reports usage to the revoke gate exactly when the inventory
// declares in_use; postgres always does.
func TestResolvedRotatorReportsUsageOnlyWhenDeclared(t *testing.T) {
	const text = `version: 1
secrets:
  - id: api/plain
    kind: httpapi
    httpapi:
      admin: file:admin/api#token
      create: {method: POST, url: "https://api.example.com/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://api.example.com/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://api.example.com/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      key_id: id
      key_secret: secret
  - id: api/checked
    kind: httpapi
    httpapi:
      admin: file:admin/api#token
      create: {method: POST, url: "https://api.example.com/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://api.example.com/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://api.example.com/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      in_use: {url: "https://api.example.com/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}, last_used: last_used_at}
      key_id: id
      key_secret: secret
  - id: prod/orders-db/app
    kind: postgres
    postgres:
      host: 127.0.0.1
      database: orders
      role: app
      admin: {username: keyturn_admin, password: file:admin/api#password}
`
	inv, err := inventory.Parse("inventory.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	inv.ApplyDefaults()
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := store.Put(ctx, "admin/api", secret.Material{"token": secret.NewSensitive("admin-token"), "password": secret.NewSensitive("admin-pw")}, nil); err != nil {
		t.Fatal(err)
	}
	r := New(inv, Backends{File: store})
	for id, want := range map[secret.ID]bool{"api/plain": false, "api/checked": true, "prod/orders-db/app": true} {
		b, err := r.Resolve(ctx, id)
		if err != nil {
			t.Fatalf("Resolve %s: %v", id, err)
		}
		if got := b.Steps.ReportsUsage(); got != want {
			t.Errorf("%s: ReportsUsage = %v, want %v", id, got, want)
		}
	}
}
