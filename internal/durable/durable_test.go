package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplaceAndCreateNew: Replace swaps the content, owner-only, leaving no temporary;
// CreateNew writes once and never replaces what is there.
func TestReplaceAndCreateNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if created, err := CreateNew(path, ".f-*", []byte("one")); err != nil || !created {
		t.Fatalf("CreateNew: %v, %v", created, err)
	}
	if created, err := CreateNew(path, ".f-*", []byte("two")); err != nil || created {
		t.Fatalf("CreateNew over an existing file: %v, %v", created, err)
	}
	if data, _ := os.ReadFile(path); string(data) != "one" {
		t.Fatalf("CreateNew replaced the file: %q", data)
	}
	if err := Replace(path, ".f-*", []byte("three")); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if data, _ := os.ReadFile(path); err != nil || string(data) != "three" || info.Mode().Perm() != 0o600 {
		t.Fatalf("after Replace: %q, mode %v, %v", data, info.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".f-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := Replace(filepath.Join(dir, "missing", "f"), ".f-*", nil); err == nil {
		t.Fatal("Replace into a missing directory must fail")
	}
}
