package file

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store { return openTest(t, t.TempDir()) })
}

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func pw(value string) secret.Material {
	return secret.Material{"password": secret.NewSensitive(value)}
}

func stage(t *testing.T, s *Store, id secret.ID, token secret.VersionToken, m secret.Material) secret.Version {
	t.Helper()
	v, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: token, Material: m})
	if err != nil {
		t.Fatalf("StagePending(%s): %v", token, err)
	}
	return v
}

// readDocument reads a secret's file as this package wrote it.
func readDocument(t *testing.T, dir string, id secret.ID) *document {
	t.Helper()
	d, err := loadDocument(filepath.Join(dir, secretsDirName), id)
	if err != nil || d == nil {
		t.Fatalf("load document of %s: %v (nil: %v)", id, err, d == nil)
	}
	return d
}

func TestCreatedAtComesFromTheClock(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	s, err := OpenWithOptions(t.TempDir(), Options{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatalf("OpenWithOptions: %v", err)
	}
	v := stage(t, s, "dev/app", "v1", pw("p1"))
	if !v.CreatedAt.Equal(at) {
		t.Fatalf("CreatedAt is %v, want %v", v.CreatedAt, at)
	}
	got, _, err := s.Read(t.Context(), "dev/app", secret.StagePending)
	if err != nil || !got.CreatedAt.Equal(at) {
		t.Fatalf("read back CreatedAt %v (err %v), want %v", got.CreatedAt, err, at)
	}
}

func TestVersionsWithoutStageAreDeletedFromTheFile(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	const id = secret.ID("dev/app")

	stage(t, s, id, "superseded", pw("p0"))
	for _, token := range []secret.VersionToken{"v1", "v2", "v3"} {
		stage(t, s, id, token, pw("p-"+string(token)))
		if err := s.Promote(t.Context(), id, token); err != nil {
			t.Fatalf("Promote(%s): %v", token, err)
		}
	}
	d := readDocument(t, dir, id)
	var tokens []secret.VersionToken
	for _, r := range d.Versions {
		tokens = append(tokens, r.Token)
	}
	slices.Sort(tokens)
	if !slices.Equal(tokens, []secret.VersionToken{"v2", "v3"}) {
		t.Fatalf("file keeps versions %v, want [v2 v3]", tokens)
	}
	if d.NextNumber != 5 {
		t.Fatalf("next_number is %d, want 5", d.NextNumber)
	}
}

func TestNumbersSurviveAnEmptiedSecret(t *testing.T) {
	s := openTest(t, t.TempDir())
	const id = secret.ID("dev/app")
	stage(t, s, id, "v1", pw("p1"))
	if err := s.DiscardPending(t.Context(), id, "v1"); err != nil {
		t.Fatalf("DiscardPending: %v", err)
	}
	if _, err := s.ListVersions(t.Context(), id); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ListVersions of an emptied secret: %v, want ErrNotFound", err)
	}
	if v := stage(t, s, id, "v2", pw("p2")); v.Number != 2 {
		t.Fatalf("version after a discard has number %d, want 2", v.Number)
	}
}

func TestPutWritesCurrent(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := t.Context()
	const id = secret.ID("dev/postgres/admin")

	v1, err := s.Put(ctx, id, pw("seed-1"), map[string]string{"user": "postgres"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if !slices.Equal(v1.Stages, []secret.Stage{secret.StageCurrent}) || v1.Metadata["user"] != "postgres" {
		t.Fatalf("Put gave %+v", v1)
	}
	stage(t, s, id, "pending", pw("abandoned"))
	v2, err := s.Put(ctx, id, pw("seed-2"), nil)
	if err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if v2.Token == v1.Token || v2.Number <= v1.Number {
		t.Fatalf("second Put gave %+v after %+v", v2, v1)
	}
	cur, m, err := s.Read(ctx, id, secret.StageCurrent)
	if err != nil || cur.Token != v2.Token || m.Get("password").Reveal() != "seed-2" {
		t.Fatalf("current after Put is %s (err %v)", cur.Token, err)
	}
	prev, _, err := s.Read(ctx, id, secret.StagePrevious)
	if err != nil || prev.Token != v1.Token {
		t.Fatalf("previous after Put is %s (err %v), want %s", prev.Token, err, v1.Token)
	}
	if _, _, err := s.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Put left a pending version: %v", err)
	}
}

func TestStageRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	for name, req := range map[string]stores.StageRequest{
		"empty token":        {SecretID: "dev/app", Material: pw("p")},
		"control in token":   {SecretID: "dev/app", Token: "v\x001", Material: pw("p")},
		"invalid utf-8":      {SecretID: "dev/app", Token: "v\xff", Material: pw("p")},
		"no material":        {SecretID: "dev/app", Token: "v1"},
		"parent directory":   {SecretID: "..", Token: "v1", Material: pw("p")},
		"escaping path":      {SecretID: "dev/../../../tmp/x", Token: "v1", Material: pw("p")},
		"absolute path":      {SecretID: "/etc/passwd", Token: "v1", Material: pw("p")},
		"windows separators": {SecretID: `dev\app`, Token: "v1", Material: pw("p")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.StagePending(t.Context(), req); err == nil {
				t.Fatal("StagePending succeeded")
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join(dir, secretsDirName))
	if err != nil || len(entries) != 0 {
		t.Fatalf("secrets dir holds %d entries after refused writes (err %v)", len(entries), err)
	}
}

func TestDocumentNamesAreFlatAndDistinct(t *testing.T) {
	seen := map[string]secret.ID{}
	for _, id := range []secret.ID{"prod/db", "prod/db/app", "prod-db", "prod.db", "prod_db/app", "a..b"} {
		name, err := docName(id)
		if err != nil {
			t.Fatalf("docName(%s): %v", id, err)
		}
		if filepath.Base(name) != name {
			t.Fatalf("docName(%s) = %q is not a plain file name", id, name)
		}
		if other, ok := seen[name]; ok {
			t.Fatalf("%s and %s both map to %q", id, other, name)
		}
		seen[name] = id
	}
}

func TestDocumentIsReadableJSON(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	stage(t, s, "dev/app", "v1", pw("p1"))
	data, err := os.ReadFile(filepath.Join(dir, secretsDirName, "dev%2Fapp.json"))
	if err != nil {
		t.Fatalf("read document: %v", err)
	}
	var raw struct {
		NextNumber int `json:"next_number"`
		Versions   []map[string]any
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("decode document: %v", err)
	}
	want := []string{"ciphertext", "created_at", "key_id", "nonce", "number", "stages", "token"}
	if len(raw.Versions) != 1 {
		t.Fatalf("document has %d versions", len(raw.Versions))
	}
	for _, field := range want {
		if _, ok := raw.Versions[0][field]; !ok {
			t.Errorf("version lacks field %q", field)
		}
	}
	if raw.NextNumber != 2 {
		t.Errorf("next_number is %d, want 2", raw.NextNumber)
	}
}
