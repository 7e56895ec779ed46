package binding

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

const inventoryYAML = `version: 1
secrets:
  - id: prod/orders-db/app
    kind: postgres
    grace: 0s
    postgres:
      host: 127.0.0.1
      database: orders
      role: app
      admin:
        username: keyturn_admin
        password: file:admin/orders-db
`

func newResolver(t *testing.T) (*Resolver, *file.Store) {
	t.Helper()
	inv, err := inventory.Parse("inventory.yaml", []byte(inventoryYAML))
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
	return New(inv, Backends{File: store}), store
}

func TestResolveUnknownSecret(t *testing.T) {
	r, _ := newResolver(t)
	_, err := r.Resolve(context.Background(), "prod/other")
	if !errors.Is(err, activities.ErrUnknownSecret) || !strings.Contains(err.Error(), "prod/other") {
		t.Fatalf("want ErrUnknownSecret naming the id, got %v", err)
	}
}

func TestResolveWithoutSeededAdminSaysHowToSeed(t *testing.T) {
	r, _ := newResolver(t)
	_, err := r.Resolve(context.Background(), "prod/orders-db/app")
	if !errors.Is(err, ErrRefUnresolved) || !strings.Contains(err.Error(), "keyturn put admin/orders-db --field password") {
		t.Fatalf("want an unresolved reference with the seeding command, got %v", err)
	}
}

func TestResolveBuildsPostgresBinding(t *testing.T) {
	r, store := newResolver(t)
	ctx := context.Background()
	if _, err := store.Put(ctx, "admin/orders-db", secret.Material{"password": secret.NewSensitive("admin-pw")}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := r.Resolve(ctx, "prod/orders-db/app")
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != inventory.KindPostgres || b.Grace != 0 || b.Steps.SecretID != "prod/orders-db/app" || b.Steps.Rotator == nil || b.Steps.Store == nil {
		t.Fatalf("binding %+v", b)
	}
}

func TestRevealReferences(t *testing.T) {
	r, store := newResolver(t)
	ctx := context.Background()
	r.env = func(k string) (string, bool) {
		if k == "ADMIN_PW" {
			return "from-env", true
		}
		return "", false
	}
	if _, err := store.Put(ctx, "admin/x", secret.Material{"token": secret.NewSensitive("from-file")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref     inventory.Ref
		want    string
		wantErr error
	}{
		{"env:ADMIN_PW", "from-env", nil},
		{"env:MISSING", "", ErrRefUnresolved},
		{"file:admin/x#token", "from-file", nil},
		{"file:admin/x", "", ErrRefUnresolved}, // no "password" field
		{"file:admin/none", "", ErrRefUnresolved},
		{"vault:secret/x", "", rotators.ErrInvalidConfig},
		{"hunter2", "", rotators.ErrInvalidConfig},
	} {
		got, err := r.Reveal(ctx, tc.ref)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: error %v, want %v", tc.ref, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: the error echoes a literal password: %v", tc.ref, err)
			}
			continue
		}
		if err != nil || got.Reveal() != tc.want {
			t.Errorf("%s: got %v, %v", tc.ref, got, err)
		}
	}
}

// Versions go to the inventory's store path, where consumers read them.
func TestStorePathIsWhereVersionsGo(t *testing.T) {
	inv, err := inventory.Parse("inventory.yaml", []byte(strings.Replace(inventoryYAML, "    grace: 0s\n", "    grace: 0s\n    store: {type: file, path: apps/orders/db}\n", 1)))
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
	if _, err := store.Put(ctx, "admin/orders-db", secret.Material{"password": secret.NewSensitive("admin-pw")}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := New(inv, Backends{File: store}).Resolve(ctx, "prod/orders-db/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Steps.Store.StagePending(ctx, stores.StageRequest{SecretID: "prod/orders-db/app", Token: "t1", Material: secret.Material{"password": secret.NewSensitive("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.ReadVersion(ctx, "apps/orders/db", "t1"); err != nil {
		t.Fatalf("the version is not under the store path: %v", err)
	}
	if _, _, err := store.ReadVersion(ctx, "prod/orders-db/app", "t1"); err == nil {
		t.Fatal("the version must not be under the secret id")
	}
}
