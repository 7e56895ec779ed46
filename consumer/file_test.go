package consumer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/stores/file"
)

func TestFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	runStoreCase(t, storeCase{
		st: st, src: src, id: "prod/orders-db/app",
		// The directory is replaced by a file: every read fails as on a lost volume.
		down: func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestOpenFileRefusesADirectoryWithoutAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := OpenFile(dir)
	if err == nil || !strings.Contains(err.Error(), "no store key") {
		t.Fatalf("OpenFile on a missing directory = %v, want a refusal naming the key", err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Fatal("OpenFile created the directory")
	}
}

// A consumer only reads: opening the store and reading through the cache creates no
// lock file and changes no file the worker wrote.
func TestOpenFileWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rotateTo(t, st, "prod/orders-db/app", "v1", canary(t))
	if err := os.Remove(filepath.Join(dir, "store.lock")); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "secrets", "prod%2Forders-db%2Fapp.json")
	before, err := os.Stat(doc)
	if err != nil {
		t.Fatal(err)
	}

	src, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(t.Context(), "prod/orders-db/app"); err != nil || v.Version.Token != "v1" {
		t.Fatalf("Get: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store.lock")); !os.IsNotExist(err) {
		t.Fatalf("reading created store.lock (%v)", err)
	}
	if after, err := os.Stat(doc); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("reading changed the secret's file (%v)", err)
	}
}
