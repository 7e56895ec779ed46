package vaultkv

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// dbMetadata is what the Postgres rotator gives a version of twin user, with a host name
// as long as an Aurora cluster endpoint, so the ledger's 512-byte limit is tried too.
func dbMetadata(user string) map[string]string {
	return map[string]string{
		"role": user, "strategy": "alternating", "username": user,
		"engine": "postgres", "host": "orders-prod.cluster-c9akciq32xyz.eu-west-1.rds.amazonaws.com", "port": "6432", "dbname": "orders",
	}
}

// realisticToken is as long as the tokens rotations make: the workflow ID and a run ID.
const realisticToken = "rotate/prod/orders-db/app/0d6f3c1e-5a8b-4f0e-9c1d-2b3a4c5d6e7f"

// rawConsumer reads the consumer path with Vault's HTTP API, the way a consumer with no
// Vault library does, and decodes data keeping numbers as numbers.
func rawConsumer(t *testing.T, srv *vaulttest.Server, id secret.ID) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.Addr+"/v1/secret/data/"+string(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET the consumer path: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the consumer path: HTTP %d", resp.StatusCode)
	}
	var body struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("the consumer path's answer is not JSON: %v", err)
	}
	return body.Data.Data
}

// TestDatabaseSecretHasAWSStructureAtTopLevel checks the consumer path of a database
// version against AWS's documented structure for database credentials: engine, host,
// dbname, username and password as strings, port as a number, nothing of Keyturn's
// bookkeeping (that is in the path's custom metadata). Keyturn reads back the metadata
// as text and only the password as material.
func TestDatabaseSecretHasAWSStructureAtTopLevel(t *testing.T) {
	srv := server(t)
	s := newStore(t, srv)
	id := uniqueID(t, "dbjson")
	stage(t, s, id, realisticToken, pw("pw-one"), dbMetadata("app_a"))
	promote(t, s, id, realisticToken)

	data := rawConsumer(t, srv, id)
	for k, want := range map[string]string{"engine": "postgres", "host": dbMetadata("")["host"], "dbname": "orders", "username": "app_a", "password": "pw-one"} {
		if got, ok := data[k].(string); !ok || got != want {
			t.Errorf("consumer field %q is %T, want the string of the version", k, data[k])
		}
	}
	if port, ok := data["port"].(json.Number); !ok || port.String() != "6432" {
		t.Errorf("consumer field port is %v (%T), want the JSON number 6432", data["port"], data["port"])
	}

	v, m, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(v.Metadata, dbMetadata("app_a")) {
		t.Errorf("metadata read back is %v, want what was staged", v.Metadata)
	}
	if len(m) != 1 || m.Get("password").Reveal() != "pw-one" {
		t.Errorf("material read back has %d fields, want the password only", len(m))
	}
	if f, err := s.ReadField(t.Context(), "secret/"+string(id), "port"); err != nil || f.Reveal() != "6432" {
		t.Errorf("ReadField port: %v", err)
	}
}

// TestOldLayoutVersionsStillRead: a version in the layout Keyturn wrote before the
// database fields (username only), a rotation to the new layout, and a rollback, which
// copies the old KV version: every version reads with its own metadata and material.
func TestOldLayoutVersionsStillRead(t *testing.T) {
	srv := server(t)
	s := newStore(t, srv)
	id := uniqueID(t, "oldlayout")
	oldMeta := map[string]string{"role": "app_a", "strategy": "alternating", "username": "app_a"}
	stage(t, s, id, "v1", pw("pw-old"), oldMeta)
	promote(t, s, id, "v1")

	stage(t, s, id, "v2", pw("pw-new"), dbMetadata("app_b"))
	promote(t, s, id, "v2")
	if data := rawConsumer(t, srv, id); data["username"] != "app_b" || data["engine"] != "postgres" {
		t.Fatalf("after the rotation consumers read username %v, engine %v", data["username"], data["engine"])
	}
	prev, m, err := s.Read(t.Context(), id, secret.StagePrevious)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(prev.Metadata, oldMeta) || len(m) != 1 || m.Get("password").Reveal() != "pw-old" {
		t.Fatalf("the old-layout previous version reads as metadata %v and %d material fields", prev.Metadata, len(m))
	}

	promote(t, s, id, "v1") // rollback: a copy of the old KV version
	data := rawConsumer(t, srv, id)
	if data["username"] != "app_a" || data["password"] != "pw-old" {
		t.Fatal("after the rollback consumers do not read the old version")
	}
	if _, ok := data["engine"]; ok {
		t.Fatal("the rolled-back old version shows the new version's engine")
	}
	expectRead(t, s, id, secret.StageCurrent, "v1", pw("pw-old"))
	expectRead(t, s, id, secret.StagePrevious, "v2", pw("pw-new"))
}

// TestStageRefusesAPortConsumersCannotRead: port metadata that is not a number is
// refused before anything is written, naming the field and not the value.
func TestStageRefusesAPortConsumersCannotRead(t *testing.T) {
	srv := server(t)
	s := newStore(t, srv)
	id := uniqueID(t, "badport")
	meta := dbMetadata("app_a")
	meta["port"] = "fivefourthreetwo"
	_, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: "v1", Material: pw("pw"), Metadata: meta})
	if err == nil {
		t.Fatal("a non-numeric port was staged")
	}
	if !strings.Contains(err.Error(), `"port"`) || strings.Contains(err.Error(), "fivefourthreetwo") {
		t.Fatalf("the error must name the port field without echoing it: %v", err)
	}
	if _, _, err := s.Read(t.Context(), id, secret.StagePending); err == nil {
		t.Fatal("the refused version was staged")
	}
}
