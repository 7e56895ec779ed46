package file

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/secret"
)

func TestOpenCreatesPrivateKeyAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	openTest(t, dir)

	info, err := os.Stat(filepath.Join(dir, keyFileName))
	if err != nil {
		t.Fatalf("stat key: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode is %#o, want 0600", perm)
	}
	for _, d := range []string{dir, filepath.Join(dir, secretsDirName)} {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatalf("stat %s: %v", d, err)
		}
		if perm := info.Mode().Perm(); perm != 0o700 {
			t.Fatalf("%s mode is %#o, want 0700", d, perm)
		}
	}
	if _, _, err := readKey(filepath.Join(dir, keyFileName)); err != nil {
		t.Fatalf("created key does not read back: %v", err)
	}
}

func TestOpenRefusesAKeyOthersCanRead(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o700} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			openTest(t, dir)
			keyPath := filepath.Join(dir, keyFileName)
			if err := os.Chmod(keyPath, mode); err != nil {
				t.Fatalf("chmod: %v", err)
			}
			_, err := Open(dir)
			if !errors.Is(err, ErrInsecureKey) {
				t.Fatalf("Open with a %#o key: %v, want ErrInsecureKey", mode, err)
			}
			if !strings.Contains(err.Error(), "chmod 600 "+keyPath) {
				t.Fatalf("error does not tell the user to chmod 600: %v", err)
			}
		})
	}
}

func TestOpenAcceptsAReadOnlyKey(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	if err := os.Chmod(filepath.Join(dir, keyFileName), 0o400); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	openTest(t, dir)
}

func TestOpenRefusesAMalformedKeyWithoutQuotingIt(t *testing.T) {
	dir := t.TempDir()
	const junk = "zz-not-hex-but-secret-looking"
	if err := os.WriteFile(filepath.Join(dir, keyFileName), []byte(junk), 0o600); err != nil {
		t.Fatalf("write key: %v", err)
	}
	_, err := Open(dir)
	if err == nil {
		t.Fatal("Open accepted a malformed key")
	}
	if strings.Contains(err.Error(), "zz") {
		t.Fatalf("error quotes the key file: %v", err)
	}
}

func TestReopenReadsPreviousData(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if _, err := s.Put(t.Context(), "dev/app", pw("kept"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, keyFileName))

	again := openTest(t, dir)
	_, m, err := again.Read(t.Context(), "dev/app", secret.StageCurrent)
	if err != nil {
		t.Fatalf("Read after reopen: %v", err)
	}
	if m.Get("password").Reveal() != "kept" {
		t.Fatal("reopened store reads different material")
	}
	if keyAgain, _ := os.ReadFile(filepath.Join(dir, keyFileName)); !bytes.Equal(key, keyAgain) {
		t.Fatal("reopening replaced the key")
	}
}

func TestAnotherKeySaysSo(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	s := openTest(t, dir)
	if _, err := s.Put(t.Context(), "dev/app", pw("p1"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	openTest(t, otherDir)
	otherKey, err := os.ReadFile(filepath.Join(otherDir, keyFileName))
	if err != nil {
		t.Fatalf("read other key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyFileName), otherKey, 0o600); err != nil {
		t.Fatalf("replace key: %v", err)
	}

	wrong := openTest(t, dir)
	_, _, err = wrong.Read(t.Context(), "dev/app", secret.StageCurrent)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Read with another key: %v, want ErrKeyMismatch", err)
	}
	if !strings.Contains(err.Error(), "store key does not match the one that wrote this secret") {
		t.Fatalf("error is not clear: %v", err)
	}
	// Without the right key the stages cannot be authenticated either: listing and
	// writing say the key is wrong, and a write must not mix two keys in one file.
	if _, err := wrong.ListVersions(t.Context(), "dev/app"); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("ListVersions with another key: %v, want ErrKeyMismatch", err)
	}
	if _, err := wrong.Put(t.Context(), "dev/app", pw("p2"), nil); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Put with another key: %v, want ErrKeyMismatch", err)
	}
}

func TestConcurrentOpensOfANewStoreShareOneKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	const n = 8
	storesOpened := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { storesOpened[i], errs[i] = Open(dir) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if storesOpened[i].sealer.keyID != storesOpened[0].sealer.keyID {
			t.Fatalf("Open #%d got key %s, #0 got %s", i, storesOpened[i].sealer.keyID, storesOpened[0].sealer.keyID)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary key files left behind: %v", leftovers)
	}
}

func TestMissingKeyWithSecretsIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if _, err := s.Put(t.Context(), "dev/app", pw("kept"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	keyPath := filepath.Join(dir, keyFileName)
	moved := filepath.Join(t.TempDir(), "moved.key")
	if err := os.Rename(keyPath, moved); err != nil {
		t.Fatalf("move key: %v", err)
	}

	_, err := Open(dir)
	if !errors.Is(err, ErrMissingKey) {
		t.Fatalf("Open without its key: %v, want ErrMissingKey", err)
	}
	for _, want := range []string{keyPath, "restore", "1 secret files"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused Open wrote a key (stat: %v)", err)
	}

	// Putting the key back is the whole repair.
	if err := os.Rename(moved, keyPath); err != nil {
		t.Fatalf("restore key: %v", err)
	}
	_, m, err := openTest(t, dir).Read(t.Context(), "dev/app", secret.StageCurrent)
	if err != nil || m.Get("password").Reveal() != "kept" {
		t.Fatalf("Read after restoring the key: %v", err)
	}
}

func TestMissingKeyOfAnEmptyStoreIsCreated(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	// An empty secrets directory, and one holding only a killed writer's temporary
	// file, have nothing a new key could fail to read.
	tmp := filepath.Join(dir, secretsDirName, ".dev%2Fapp.json.123.tmp")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, keyFileName)); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir)
	if _, _, err := readKey(filepath.Join(dir, keyFileName)); err != nil {
		t.Fatalf("no new key for an empty store: %v", err)
	}
}
