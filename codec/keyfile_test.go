package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// TestRotateKeyFile: a rotated file encrypts with a new key, still decrypts what the old
// key wrote, keeps its comments on top, stays owner-only, and a file that does not load
// is refused with nothing changed.
func TestRotateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "codec.key")
	if created, err := CreateKeyFile(path); err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	if created, err := CreateKeyFile(path); err != nil || created {
		t.Fatalf("a second create must keep the file: %v, %v", created, err)
	}
	before, _ := os.ReadFile(path)
	old := codecOf(t, path)
	p, err := converter.GetDefaultDataConverter().ToPayload("ref:prod/app")
	if err != nil {
		t.Fatal(err)
	}
	written, err := old.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}

	n, err := RotateKeyFile(path)
	if err != nil || n != 2 {
		t.Fatalf("rotate: %d keys, %v", n, err)
	}
	after, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(after), keyFileHeader) || !strings.HasSuffix(string(after), string(before[len(keyFileHeader):])) {
		t.Fatalf("the header must stay on top and the old key below the new one:\n%s", after)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o after rotate, want 600", info.Mode().Perm())
	}
	rotated := codecOf(t, path)
	if _, err := rotated.Decode(written); err != nil {
		t.Fatalf("the rotated file must decrypt what the old key wrote: %v", err)
	}
	fresh, err := rotated.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Decode(fresh); err == nil {
		t.Fatal("the rotated file must encrypt with its new key, which the old file lacks")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".codec-key-*")); len(left) != 0 {
		t.Fatalf("rotate left temporary files: %v", left)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others may read must be refused: %v", err)
	}
	if unchanged, _ := os.ReadFile(path); !bytes.Equal(unchanged, after) {
		t.Fatal("a refused rotation changed the file")
	}
}

func codecOf(t *testing.T, path string) *Codec {
	t.Helper()
	keys, err := LoadKeyFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
