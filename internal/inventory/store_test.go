package inventory

import (
	"strings"
	"testing"
)

const storeInventory = `version: 1
secrets:
  - id: prod/a
    kind: postgres
    store: {type: vault, path: apps/a}
    postgres: {host: h, database: d, role: a, admin: {username: adm, password: "vault:secret/admin/a"}}
  - id: prod/b
    kind: postgres
    store: {type: awssm, mount: kv}
    postgres: {host: h, database: d, role: b, admin: {username: adm, password: "awssm:admin/b#pw"}}
`

func TestStoreTypesAndMount(t *testing.T) {
	inv, err := Parse("inv.yaml", []byte(storeInventory))
	if err != nil {
		t.Fatal(err) // Parse reports shape problems only
	}
	inv.ApplyDefaults()
	err = inv.Validate()
	if err == nil || !strings.Contains(err.Error(), "inv.yaml:9: secrets[1].store.mount: only a vault store has a mount") {
		t.Fatalf("want the mount on an awssm store reported at line 9, got %v", err)
	}
	if strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("want exactly one problem, got %v", err)
	}
	fixed, _ := Parse("inv.yaml", []byte(strings.Replace(storeInventory, ", mount: kv", "", 1)))
	fixed.ApplyDefaults()
	if err := fixed.Validate(); err != nil {
		t.Fatal(err)
	}
	a, _ := fixed.Lookup("prod/a")
	b, _ := fixed.Lookup("prod/b")
	if a.Store.Mount != DefaultVaultMount || a.Store.Path != "apps/a" || b.Store.Type != StoreAWSSM || b.Store.Path != "prod/b" || b.Store.Mount != "" {
		t.Fatalf("store refs: %+v %+v", a.Store, b.Store)
	}
}
