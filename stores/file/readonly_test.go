package file

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// fileState is what a path in the store directory looks like: mode, time, content.
type fileState struct {
	mode    fs.FileMode
	modTime time.Time
	content []byte
}

// snapshot records every file and directory under dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mode: info.Mode(), modTime: info.ModTime()}
		if info.Mode().IsRegular() {
			if st.content, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		out[path] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func expectUnchanged(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	for path, b := range before {
		a, ok := after[path]
		switch {
		case !ok:
			t.Errorf("%s was removed", path)
		case a.mode != b.mode || !a.modTime.Equal(b.modTime) || !bytes.Equal(a.content, b.content):
			t.Errorf("%s changed (mode %v→%v, mtime %v→%v)", path, b.mode, a.mode, b.modTime, a.modTime)
		}
	}
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s was created", path)
		}
	}
}

// A reader reads every stage and version and leaves every file as it found it: no lock
// file, no removed temporary, no rewrite. The directories are also made read-only, which
// stops a writer when the tests do not run as root.
func TestReadOnlyReadsWithoutWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	canaries := threeStages(t, openTest(t, dir))
	// What a writer leaves that Open would touch: the lock file (removed here, so that
	// creating it shows) and a temporary file old enough for Open to delete.
	if err := os.Remove(filepath.Join(dir, lockFileName)); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, secretsDirName, ".dev%2Fapp.json.123.tmp")
	if err := os.WriteFile(tmp, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, secretsDirName), dir} {
		if err := os.Chmod(d, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(d, 0o700) })
	}
	before := snapshot(t, dir)

	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	for stage, want := range map[secret.Stage]string{secret.StagePrevious: canaries[0], secret.StageCurrent: canaries[1], secret.StagePending: canaries[2]} {
		v, m, err := r.Read(t.Context(), "dev/app", stage)
		if err != nil || m.Get("password").Reveal() != want {
			t.Fatalf("Read(%s): %v", stage, err)
		}
		if _, m, err := r.ReadVersion(t.Context(), "dev/app", v.Token); err != nil || m.Get("password").Reveal() != want {
			t.Fatalf("ReadVersion(%s): %v", v.Token, err)
		}
	}
	if vs, err := r.ListVersions(t.Context(), "dev/app"); err != nil || len(vs) != 3 {
		t.Fatalf("ListVersions: %d versions, %v", len(vs), err)
	}
	if _, _, err := r.Read(t.Context(), "dev/never-written", secret.StageCurrent); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read of a secret never written: %v, want ErrNotFound", err)
	}
	expectUnchanged(t, before, snapshot(t, dir))
}

// A reader sees what a writer in another Store promotes after it opened.
func TestReadOnlyFollowsTheWriter(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir)
	stage(t, w, "dev/app", "v1", pw("one"))
	if err := w.Promote(t.Context(), "dev/app", "v1"); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	stage(t, w, "dev/app", "v2", pw("two"))
	if v, _, err := r.Read(t.Context(), "dev/app", secret.StageCurrent); err != nil || v.Token != "v1" {
		t.Fatalf("current before the promote: %s, %v", v.Token, err)
	}
	if err := w.Promote(t.Context(), "dev/app", "v2"); err != nil {
		t.Fatal(err)
	}
	if v, m, err := r.Read(t.Context(), "dev/app", secret.StageCurrent); err != nil || v.Token != "v2" || m.Get("password").Reveal() != "two" {
		t.Fatalf("current after the promote: %s, %v", v.Token, err)
	}
}

// A store in format 1 needs an upgrade, which is a write: the reader refuses it, says
// which command upgrades it, and changes nothing. After the upgrade it reads.
func TestReadOnlyRefusesAStoreThatNeedsAnUpgrade(t *testing.T) {
	dir := t.TempDir()
	canaries := threeStages(t, openTest(t, dir))
	downgrade(t, dir, "dev/app")
	before := snapshot(t, dir)

	_, err := OpenReadOnly(dir)
	if !errors.Is(err, ErrNeedsUpgrade) || !strings.Contains(err.Error(), "keyturn get") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("OpenReadOnly of a format 1 store: %v; want ErrNeedsUpgrade naming the store and the command", err)
	}
	for _, c := range canaries {
		if strings.Contains(err.Error(), c) {
			t.Fatal("the error holds material")
		}
	}
	expectUnchanged(t, before, snapshot(t, dir))

	openTest(t, dir) // a writer upgrades it
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("OpenReadOnly after the upgrade: %v", err)
	}
	if _, m, err := r.Read(t.Context(), "dev/app", secret.StageCurrent); err != nil || m.Get("password").Reveal() != canaries[1] {
		t.Fatalf("Read after the upgrade: %v", err)
	}
}

func TestReadOnlyRefusesWhatIsNoStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	if _, err := OpenReadOnly(missing); err == nil || !strings.Contains(err.Error(), "no store key") {
		t.Fatalf("OpenReadOnly of a missing directory: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("OpenReadOnly created the directory")
	}
	if _, err := OpenReadOnly(""); err == nil {
		t.Fatal("OpenReadOnly of no directory succeeded")
	}

	dir := t.TempDir()
	openTest(t, dir)
	if err := os.Chmod(filepath.Join(dir, keyFileName), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(dir); !errors.Is(err, ErrInsecureKey) {
		t.Fatalf("OpenReadOnly with a world-readable key: %v, want ErrInsecureKey", err)
	}
}
