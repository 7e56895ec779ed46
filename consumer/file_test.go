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
