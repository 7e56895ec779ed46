package awssm

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// dbMetadata is what the Postgres rotator gives a version of twin user.
func dbMetadata(user string) map[string]string {
	return map[string]string{
		"role": user, "strategy": "alternating", "username": user,
		"engine": "postgres", "host": "orders.example.internal", "port": "6432", "dbname": "orders",
	}
}

// currentObject reads AWSCURRENT as an AWS tool does and decodes it keeping numbers as
// numbers.
func currentObject(t *testing.T, id secret.ID) map[string]any {
	t.Helper()
	out, err := consumerClient(t).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(testPrefix + string(id)), VersionStage: aws.String(LabelCurrent),
	})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(aws.ToString(out.SecretString)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("SecretString is not a JSON object: %v", err)
	}
	return obj
}

// TestDatabaseSecretHasAWSStructureAtTopLevel checks the SecretString of a database
// version against AWS's documented structure for database credentials: engine, host,
// dbname, username and password as strings, port as a number, all at the top level
// beside the bookkeeping, which keeps the metadata as text so that Keyturn reads back
// exactly what it wrote.
func TestDatabaseSecretHasAWSStructureAtTopLevel(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	m := pw(t)
	mustStage(t, s, id, "v1", m, dbMetadata("app_a"))
	mustPromote(t, s, id, "v1")

	obj := currentObject(t, id)
	for k, want := range map[string]string{"engine": "postgres", "host": "orders.example.internal", "dbname": "orders", "username": "app_a"} {
		if got, ok := obj[k].(string); !ok || got != want {
			t.Errorf("top-level %q is %v (%T), want the string %q", k, obj[k], obj[k], want)
		}
	}
	if port, ok := obj["port"].(json.Number); !ok || port.String() != "6432" {
		t.Errorf("top-level port is %v (%T), want the JSON number 6432", obj["port"], obj["port"])
	}
	if got, ok := obj["password"].(string); !ok || got != m["password"].Reveal() {
		t.Error("top-level password is not the version's password")
	}
	bk, ok := obj[BookkeepingKey].(map[string]any)
	if !ok {
		t.Fatalf("no %q bookkeeping object beside the fields", BookkeepingKey)
	}
	if md, _ := bk["metadata"].(map[string]any); md["port"] != "6432" {
		t.Errorf("bookkeeping metadata port is %v (%T), want the text 6432", md["port"], md["port"])
	}

	v, got, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(v.Metadata, dbMetadata("app_a")) {
		t.Errorf("metadata read back is %v, want what was staged", v.Metadata)
	}
	if !maps.EqualFunc(got, m, secret.Sensitive.Equal) {
		t.Errorf("material read back has fields %v, want only password", slices.Sorted(maps.Keys(got)))
	}
	if f, err := s.ReadField(t.Context(), testPrefix+string(id), "port"); err != nil || f.Reveal() != "6432" {
		t.Errorf("ReadField port = %v", err)
	}
}

// TestOldLayoutVersionsStillRead writes a version the way Keyturn did before the database
// fields (username only, no engine, host, port or dbname), then rotates to the new layout
// and rolls back: every version reads, with its own metadata, and consumers get the
// layout of whichever version is current.
func TestOldLayoutVersionsStillRead(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	old := pw(t)
	oldMeta := map[string]string{"role": "app_a", "strategy": "alternating", "username": "app_a"}
	mustStage(t, s, id, "v1", old, oldMeta)
	mustPromote(t, s, id, "v1")
	if _, ok := currentObject(t, id)["port"]; ok {
		t.Fatal("an old-layout version grew a port")
	}

	next := pw(t)
	mustStage(t, s, id, "v2", next, dbMetadata("app_b"))
	mustPromote(t, s, id, "v2")
	if obj := currentObject(t, id); obj["username"] != "app_b" || obj["engine"] != "postgres" {
		t.Fatalf("after the rotation consumers read username %v, engine %v", obj["username"], obj["engine"])
	}
	prev, m, err := s.Read(t.Context(), id, secret.StagePrevious)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(prev.Metadata, oldMeta) || !maps.EqualFunc(m, old, secret.Sensitive.Equal) {
		t.Fatalf("the old-layout previous version reads as metadata %v, material fields %v", prev.Metadata, slices.Sorted(maps.Keys(m)))
	}

	mustPromote(t, s, id, "v1") // rollback to the old layout
	obj := currentObject(t, id)
	if obj["username"] != "app_a" || obj["password"] != old["password"].Reveal() {
		t.Fatal("after the rollback consumers do not read the old version")
	}
	if _, ok := obj["engine"]; ok {
		t.Fatal("the rolled-back old version shows the new version's engine")
	}
}

// TestStageRefusesAPortConsumersCannotRead: a hand-made version whose port metadata is not
// a number is refused before anything is written, naming the field and not the value.
func TestStageRefusesAPortConsumersCannotRead(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	meta := dbMetadata("app_a")
	meta["port"] = "fivefourthreetwo"
	_, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: "v1", Material: pw(t), Metadata: meta})
	if err == nil {
		t.Fatal("a non-numeric port was staged")
	}
	if !strings.Contains(err.Error(), `"port"`) || strings.Contains(err.Error(), "fivefourthreetwo") {
		t.Fatalf("the error must name the port field without echoing it: %v", err)
	}
	if _, err := consumerClient(t).DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(testPrefix + string(id))}); !isNotFound(err) {
		t.Fatalf("the refused stage created the secret: %v", err)
	}
}

// TestEncodedPortIsANumberOnlyAtTheTopLevel is the encoder alone, without AWS.
func TestEncodedPortIsANumberOnlyAtTheTopLevel(t *testing.T) {
	bk := bookkeeping{Format: formatVersion, Token: "v1", Number: 1, Metadata: dbMetadata("app_b")}
	value, err := encodeValue(bk, secret.Material{"password": secret.NewSensitive("pw")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(value), []byte(`"port":6432`)) || !bytes.Contains([]byte(value), []byte(`"port":"6432"`)) {
		t.Fatalf("want the port as a number at the top level and as text in the bookkeeping; got keys of %d bytes", len(value))
	}
}
