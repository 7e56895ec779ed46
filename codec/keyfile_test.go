package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	written := encode(t, old)

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
	if _, err := old.Decode(encode(t, rotated)); err == nil {
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

// TestAddThenPromote: add makes a key every reader of the file can decrypt with while
// the current one still encrypts; promote then makes it encrypt. A process that loaded
// the file after add reads what a process loading it after promote writes.
func TestAddThenPromote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "codec.key")
	if _, err := CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	first := codecOf(t, path)
	if n, err := AddKeyFile(path); err != nil || n != 2 {
		t.Fatalf("add: %d keys, %v", n, err)
	}
	added := codecOf(t, path)
	if _, err := first.Decode(encode(t, added)); err != nil {
		t.Fatalf("after add the current key must still encrypt: %v", err)
	}
	if n, err := PromoteKeyFile(path); err != nil || n != 2 {
		t.Fatalf("promote: %d keys, %v", n, err)
	}
	promoted := codecOf(t, path)
	if _, err := added.Decode(encode(t, promoted)); err != nil {
		t.Fatalf("a process that loaded the file after add must read what the promoted key writes: %v", err)
	}
	if _, err := first.Decode(encode(t, promoted)); err == nil {
		t.Fatal("after promote the added key must encrypt")
	}
	if _, err := promoted.Decode(encode(t, first)); err != nil {
		t.Fatalf("the previous key must still decrypt: %v", err)
	}
	single := filepath.Join(t.TempDir(), "one.key")
	if _, err := CreateKeyFile(single); err != nil {
		t.Fatal(err)
	}
	if _, err := PromoteKeyFile(single); err == nil || !strings.Contains(err.Error(), "no added key waits to be promoted") {
		t.Fatalf("promote with one key: %v", err)
	}
	// A second promote would make the older key encrypt again: it is refused, unchanged.
	before, _ := os.ReadFile(path)
	if _, err := PromoteKeyFile(path); err == nil || !strings.Contains(err.Error(), "no added key waits") {
		t.Fatalf("a second promote: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) || strings.Contains(string(after), "not promoted yet") {
		t.Fatalf("a refused promote changed the file, or the mark stayed:\n%s", after)
	}
	// An added key waiting for promotion: neither another add nor a rotate may bury it.
	if _, err := AddKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for name, do := range map[string]func(string) (int, error){"add": AddKeyFile, "rotate": RotateKeyFile} {
		if _, err := do(path); err == nil || !strings.Contains(err.Error(), "waits to be promoted") {
			t.Fatalf("%s with an added key waiting: %v", name, err)
		}
	}
}

// TestRotateThroughALinkChangesTheFile: a link to the key file (a mounted path, an
// alias) stays a link, and the file it names gets the new key.
func TestRotateThroughALinkChangesTheFile(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.key"), filepath.Join(dir, "link.key")
	if _, err := CreateKeyFile(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateKeyFile(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link must stay a link: %v, %v", fi, err)
	}
	if keys, err := LoadKeyFile(real, false); err != nil || len(keys) != 2 {
		t.Fatalf("the linked file must hold the new key: %d, %v", len(keys), err)
	}
}

// TestRacingCreatesShareOneCompleteKey: processes that find the file mid-creation read a
// whole key, and all of them end with the same one.
func TestRacingCreatesShareOneCompleteKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "codec.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 32)
	errs := make([]error, 32)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadKeyFile(path, true)
			if err == nil {
				keys[i] = k[0]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("load %d: %v (same key: %v)", i, errs[i], bytes.Equal(keys[i], keys[0]))
		}
	}
}

func encode(t *testing.T, c *Codec) []*commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload("ref:prod/app")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	return out
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

// TestRotateKeepsTheOwner: rotating as root (sudo, a root shell in the container) leaves
// the file with the owner the workers run as, or they could no longer read it.
func TestRotateKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	path := filepath.Join(t.TempDir(), "codec.key")
	if _, err := CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := ownerOf(info); uid != 65532 || gid != 65532 || info.Mode().Perm() != 0o600 {
		t.Fatalf("after rotate: owner %d:%d mode %o, want 65532:65532 600", uid, gid, info.Mode().Perm())
	}
}
