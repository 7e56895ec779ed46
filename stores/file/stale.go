package file

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/filelock"
)

// staleTempAge is how old a temporary file must be before Open removes it. Every
// writer of a document holds the store lock from creating its temporary file to the
// rename, and Open removes nothing while the lock is held, so the age is a second
// guard, for the one temporary written without the lock: a new store's key file, which
// lives for milliseconds.
const staleTempAge = 10 * time.Second

// removeStaleTemps deletes the temporary files older than minAge that writers killed
// between creating and renaming them left behind (writeFileAtomic, createKey). It runs only if the store
// lock is free at once: then no writer is between those two steps, and Open never waits
// for a busy store just to tidy it. It is best effort: a file it cannot remove stays
// for the next Open, and never fails this one.
func removeStaleTemps(dir string, minAge time.Duration) {
	unlock, ok, err := filelock.TryLock(filepath.Join(dir, lockFileName))
	if err != nil || !ok {
		return
	}
	defer unlock()
	cutoff := time.Now().Add(-minAge)
	for _, d := range []string{dir, filepath.Join(dir, secretsDirName)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !isTempName(e.Name()) || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil || info.ModTime().After(cutoff) {
				continue
			}
			_ = os.Remove(filepath.Join(d, e.Name()))
		}
	}
}

// isTempName matches the names os.CreateTemp gives this package's temporaries
// ("."+name+".*.tmp"), and nothing a user is likely to keep in the store directory.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") && len(name) > len("..tmp")
}
