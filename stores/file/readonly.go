package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// ErrNeedsUpgrade is returned by OpenReadOnly for a store written by a Keyturn before
// format 2: upgrading it means writing, which a reader must never do.
var ErrNeedsUpgrade = errors.New("file store needs an upgrade to format 2")

// Reader reads a file store and never writes to it: it creates no directory, no key, no
// lock file, removes no temporary file and upgrades nothing. It is what an application
// reading secrets (package consumer) uses, so that a process that only needs a password
// can run with read-only access to the store and can never change what the worker wrote.
// It is safe for concurrent use, alongside writers in other processes: writers replace
// a secret's file by rename, so a read sees the old document or the new one.
type Reader struct {
	s *Store
}

// OpenReadOnly opens the existing store in dir for reading. It refuses a directory with
// no store key (a mistyped path must not read as an empty store), a key file that other
// users can read or write (ErrInsecureKey), and a store in the format before 2
// (ErrNeedsUpgrade), which only a writer may upgrade.
func OpenReadOnly(dir string) (*Reader, error) {
	if dir == "" {
		return nil, errors.New("open file store read-only: no directory given")
	}
	keyPath := filepath.Join(dir, keyFileName)
	key, legacy, err := readKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open file store %s read-only: no store key at %s: is this the store directory (the one holding store.key and secrets/)?", dir, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("open file store %s read-only: %w", dir, err)
	}
	defer clear(key)
	if legacy {
		return nil, fmt.Errorf("open file store %s read-only: %w: it was written by an older Keyturn; "+
			"open it once with a Keyturn command that writes to it, as the user owning it "+
			"(`keyturn get <secret-id> --store-dir %s`, or start the worker), which upgrades it, then try again",
			dir, ErrNeedsUpgrade, dir)
	}
	secretsDir := filepath.Join(dir, secretsDirName)
	if info, err := os.Stat(secretsDir); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("open file store %s read-only: %s is not a directory", dir, secretsDir)
	}
	sl, err := newSealer(key)
	if err != nil {
		return nil, fmt.Errorf("open file store %s read-only: %w", dir, err)
	}
	// A Store with no lock path and no clock: Reader exposes only its read methods, which
	// touch neither.
	return &Reader{s: &Store{dir: dir, secretsDir: secretsDir, sealer: sl, now: time.Now}}, nil
}

// Dir returns the directory the store keeps its files in.
func (r *Reader) Dir() string { return r.s.dir }

// Read returns the version of the secret that holds stage and its material, as
// Store.Read does. A secret the store has no file for is stores.ErrNotFound.
func (r *Reader) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	return r.s.Read(ctx, id, stage)
}

// ReadVersion returns one version of the secret by its token, as Store.ReadVersion does.
func (r *Reader) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	return r.s.ReadVersion(ctx, id, token)
}

// ListVersions lists the secret's versions, as Store.ListVersions does.
func (r *Reader) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	return r.s.ListVersions(ctx, id)
}
