package file

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// threeStages gives dev/app a previous, a current and a pending version, each with
// metadata, and returns the canary passwords they hold.
func threeStages(t *testing.T, s *Store) []string {
	t.Helper()
	canaries := []string{"canary-prev-1b7e", "canary-cur-90d2", "canary-pend-4c3a"}
	for i, token := range []secret.VersionToken{"v1", "v2", "v3"} {
		_, err := s.StagePending(t.Context(), stores.StageRequest{
			SecretID: "dev/app", Token: token, Material: pw(canaries[i]),
			Metadata: map[string]string{"role": "app_" + string(token)},
		})
		if err != nil {
			t.Fatalf("StagePending(%s): %v", token, err)
		}
		if token != "v3" {
			if err := s.Promote(t.Context(), "dev/app", token); err != nil {
				t.Fatalf("Promote(%s): %v", token, err)
			}
		}
	}
	return canaries
}

func TestEditsOutsideTheStoreAreDetected(t *testing.T) {
	for name, edit := range map[string]func(d *document){
		"stages of two versions swapped": func(d *document) {
			cur, prev := d.holder(secret.StageCurrent), d.holder(secret.StagePrevious)
			cur.Stages, prev.Stages = prev.Stages, cur.Stages
		},
		"pending relabelled current": func(d *document) {
			d.holder(secret.StageCurrent).Stages = []secret.Stage{secret.StagePrevious}
			d.holder(secret.StagePrevious).Stages = nil
			d.holder(secret.StagePending).Stages = []secret.Stage{secret.StageCurrent}
		},
		"version number changed": func(d *document) { d.find("v2").Number = 7 },
		"metadata edited":        func(d *document) { d.find("v2").Metadata["role"] = "postgres" },
		"metadata added":         func(d *document) { d.find("v1").Metadata["username"] = "admin" },
		"metadata swapped": func(d *document) {
			d.find("v1").Metadata, d.find("v2").Metadata = d.find("v2").Metadata, d.find("v1").Metadata
		},
		"creation time changed":    func(d *document) { d.find("v2").CreatedAt = d.find("v2").CreatedAt.Add(-time.Hour) },
		"version deleted":          func(d *document) { d.Versions = d.Versions[:2] },
		"next number rewound":      func(d *document) { d.NextNumber = 1 },
		"tokens swapped":           func(d *document) { d.find("v1").Token, d.find("v2").Token = "v2", "v1" },
		"MAC removed":              func(d *document) { d.MAC = nil },
		"key ID of a version made": func(d *document) { d.find("v1").KeyID = "00000000" },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			canaries := threeStages(t, s)
			editDocument(t, dir, "dev/app", edit)
			path := filepath.Join(dir, secretsDirName, "dev%2Fapp.json")
			edited, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			fresh := openTest(t, dir)
			var errs []error
			_, _, err = fresh.Read(t.Context(), "dev/app", secret.StageCurrent)
			errs = append(errs, err)
			_, _, err = fresh.ReadVersion(t.Context(), "dev/app", "v1")
			errs = append(errs, err)
			_, err = fresh.ListVersions(t.Context(), "dev/app")
			errs = append(errs, err)
			errs = append(errs, fresh.Promote(t.Context(), "dev/app", "v3"))
			errs = append(errs, fresh.DiscardPending(t.Context(), "dev/app", "v3"))
			_, err = fresh.StagePending(t.Context(), stores.StageRequest{SecretID: "dev/app", Token: "v4", Material: pw("p4")})
			errs = append(errs, err)
			_, err = fresh.Put(t.Context(), "dev/app", pw("p5"), nil)
			errs = append(errs, err)
			for i, err := range errs {
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("operation %d on an edited file: %v, want ErrTampered", i, err)
				}
				if !strings.Contains(err.Error(), "dev/app") {
					t.Errorf("error does not name the secret: %v", err)
				}
				for _, c := range canaries {
					if strings.Contains(err.Error(), c) {
						t.Errorf("error holds material: %v", err)
					}
				}
			}
			// No refused write may sign the edit into a valid file.
			if after, _ := os.ReadFile(path); !bytes.Equal(after, edited) {
				t.Fatal("a write over an edited file changed it")
			}
			// Other secrets are unaffected.
			if _, err := fresh.Put(t.Context(), "dev/other", pw("o"), nil); err != nil {
				t.Fatalf("Put of another secret: %v", err)
			}
		})
	}
}

func TestNormalChangesStayAuthentic(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	threeStages(t, s)
	// Each change through a Store, then a fresh Store (another process) reads it all.
	steps := map[string]func() error{
		"promote": func() error { return s.Promote(t.Context(), "dev/app", "v3") },
		"stage": func() error {
			_, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: "dev/app", Token: "v4", Material: pw("p4"), Metadata: map[string]string{"role": "x"}})
			return err
		},
		"discard": func() error { return s.DiscardPending(t.Context(), "dev/app", "v4") },
		"put": func() error {
			_, err := s.Put(t.Context(), "dev/app", pw("p5"), map[string]string{"user": "u"})
			return err
		},
	}
	for _, name := range []string{"promote", "stage", "discard", "put"} {
		if err := steps[name](); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fresh := openTest(t, dir)
		vs, err := fresh.ListVersions(t.Context(), "dev/app")
		if err != nil {
			t.Fatalf("after %s: ListVersions: %v", name, err)
		}
		for _, v := range vs {
			if _, _, err := fresh.ReadVersion(t.Context(), "dev/app", v.Token); err != nil {
				t.Fatalf("after %s: ReadVersion(%s): %v", name, v.Token, err)
			}
		}
	}
	_, m, err := openTest(t, dir).Read(t.Context(), "dev/app", secret.StageCurrent)
	if err != nil || m.Get("password").Reveal() != "p5" {
		t.Fatalf("current at the end: %v", err)
	}
}

// downgrade rewrites a store into format 1 as a Keyturn before format 2 left it: bare
// hex in store.key, documents without key_id or mac.
func downgrade(t *testing.T, dir string, ids ...secret.ID) {
	t.Helper()
	key, _, err := readKey(filepath.Join(dir, keyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyFileName), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		downgradeDocument(t, dir, id)
	}
}

func downgradeDocument(t *testing.T, dir string, id secret.ID) {
	t.Helper()
	path := filepath.Join(dir, secretsDirName, strings.ReplaceAll(string(id), "/", idSeparator)+docSuffix)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	raw["format"] = 1
	delete(raw, "key_id")
	delete(raw, "mac")
	if data, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFormat1StoreIsUpgradedOnce(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	canaries := threeStages(t, s)
	if _, err := s.Put(t.Context(), "dev/other", pw("other"), nil); err != nil {
		t.Fatal(err)
	}
	downgrade(t, dir, "dev/app", "dev/other")

	// The upgrade keeps every stage and value as format 1 had them.
	up := openTest(t, dir)
	for stage, want := range map[secret.Stage]string{secret.StagePrevious: canaries[0], secret.StageCurrent: canaries[1], secret.StagePending: canaries[2]} {
		_, m, err := up.Read(t.Context(), "dev/app", stage)
		if err != nil || m.Get("password").Reveal() != want {
			t.Fatalf("%s after the upgrade: %v", stage, err)
		}
	}
	if d := readDocument(t, dir, "dev/other"); d.Format != formatVersion || len(d.MAC) == 0 {
		t.Fatalf("dev/other is format %d with a %d-byte MAC after the upgrade", d.Format, len(d.MAC))
	}
	if _, legacy, err := readKey(filepath.Join(dir, keyFileName)); err != nil || legacy {
		t.Fatalf("key file after the upgrade: legacy %v, err %v", legacy, err)
	}

	// Stripping a MAC afterwards is an edit like any other, and a later Open does not
	// upgrade the file again.
	downgradeDocument(t, dir, "dev/app")
	again := openTest(t, dir)
	if _, err := again.ListVersions(t.Context(), "dev/app"); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("ListVersions of a format 1 file in an upgraded store: %v, want ErrTampered", err)
	}
}

func TestInterruptedUpgradeFinishes(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	for _, id := range []secret.ID{"dev/a", "dev/b"} {
		if _, err := s.Put(t.Context(), id, pw("p-"+string(id)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// dev/a was upgraded, dev/b not yet, the key file not yet marked: a crash midway.
	downgrade(t, dir, "dev/b")
	up := openTest(t, dir)
	for _, id := range []secret.ID{"dev/a", "dev/b"} {
		if _, m, err := up.Read(t.Context(), id, secret.StageCurrent); err != nil || m.Get("password").Reveal() != "p-"+string(id) {
			t.Fatalf("Read(%s) after a resumed upgrade: %v", id, err)
		}
	}
}

func TestUpgradeRefusesAnEditedUpgradedFile(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	threeStages(t, s)
	downgrade(t, dir)
	editDocument(t, dir, "dev/app", func(d *document) { d.find("v1").Number = 9 })
	if _, err := Open(dir); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "dev%2Fapp.json") {
		t.Fatalf("Open of a store holding an edited format 2 file: %v, want ErrTampered naming the file", err)
	}
}
