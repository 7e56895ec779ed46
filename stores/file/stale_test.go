package file

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/filelock"
	"github.com/keyturn/keyturn/secret"
)

// leaveTemp creates a temporary file as writeFileAtomic or createKey would, with some of
// the content written, then stops, as a writer killed before its rename does; its
// modification time is set age ago.
func leaveTemp(t *testing.T, dir, pattern string, age time.Duration) string {
	t.Helper()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"format": 2, "secret_id": "dev/app", "vers`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(f.Name(), at, at); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestOpenRemovesTempsOfKilledWriters(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if _, err := s.Put(t.Context(), "dev/app", pw("kept"), nil); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, secretsDirName)
	stale := []string{
		leaveTemp(t, secrets, ".dev%2Fapp.json.*.tmp", time.Minute),
		leaveTemp(t, secrets, ".dev%2Fnew.json.*.tmp", time.Hour),
		leaveTemp(t, dir, "."+keyFileName+".*.tmp", time.Minute),
	}
	// Files that are not this package's temporaries stay, however old.
	keep := []string{filepath.Join(dir, ".keep"), filepath.Join(secrets, "notes.tmp"), filepath.Join(dir, "backup.json")}
	for _, k := range keep {
		if err := os.WriteFile(k, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(k, old, old); err != nil {
			t.Fatal(err)
		}
	}

	again := openTest(t, dir)
	for _, p := range stale {
		if exists(t, p) {
			t.Errorf("Open left the stray temporary %s", filepath.Base(p))
		}
	}
	for _, k := range keep {
		if !exists(t, k) {
			t.Errorf("Open removed %s, which is not its temporary", filepath.Base(k))
		}
	}
	if _, m, err := again.Read(t.Context(), "dev/app", secret.StageCurrent); err != nil || m.Get("password").Reveal() != "kept" {
		t.Fatalf("Read after the clean-up: %v", err)
	}
}

func TestOpenKeepsTempsALiveWriterMayHold(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	secrets := filepath.Join(dir, secretsDirName)

	// Another process holds the lock: it may be between creating its temporary and
	// renaming it, however old the file looks (a slow disk, a stopped process).
	unlock, err := filelock.Lock(t.Context(), filepath.Join(dir, lockFileName))
	if err != nil {
		t.Fatal(err)
	}
	held := leaveTemp(t, secrets, ".dev%2Fapp.json.*.tmp", time.Hour)
	openTest(t, dir)
	if !exists(t, held) {
		t.Fatal("Open removed a temporary while a writer held the store lock")
	}
	unlock()

	// A temporary younger than staleTempAge stays even with the lock free.
	fresh := leaveTemp(t, dir, "."+keyFileName+".*.tmp", 0)
	openTest(t, dir)
	if exists(t, held) {
		t.Fatal("Open kept a stale temporary once the lock was free")
	}
	if !exists(t, fresh) {
		t.Fatal("Open removed a temporary younger than staleTempAge")
	}
}

func TestCleanUpNeverBreaksAConcurrentWrite(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	// With no minimum age, only the lock keeps the clean-up off a write in progress.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				removeStaleTemps(dir, 0)
			}
		}
	})
	for i := range 200 {
		if _, err := s.Put(t.Context(), "dev/app", pw("p"), nil); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("Put #%d beside the clean-up: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}
