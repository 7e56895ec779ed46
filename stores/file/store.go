package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyturn/keyturn/internal/filelock"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

var _ stores.Store = (*Store)(nil)

// Options tunes a Store. The zero value is what Open uses.
type Options struct {
	// Now stamps CreatedAt on new versions; time.Now when nil. Tests pass a fixed clock.
	Now func() time.Time
}

// Store is the encrypted file store. It is safe for concurrent use, and several Stores,
// in one process or many, may share a directory: writes are serialized by a mutex within
// a Store and an flock across them.
type Store struct {
	dir        string
	secretsDir string
	lockPath   string
	sealer     *sealer
	now        func() time.Time

	// mu queues this Store's writers so they wait on each other without polling the
	// flock; the flock, taken on a fresh open of the lock file by each write, is what
	// keeps other Stores and other processes out.
	mu sync.Mutex
}

// Open opens the store in dir with default options. See OpenWithOptions.
func Open(dir string) (*Store, error) {
	return OpenWithOptions(dir, Options{})
}

// OpenWithOptions opens the store in dir, creating the directory (mode 0700) and a new
// random key in dir/store.key (mode 0600) if the store is new. It refuses a key file
// that other users can read or write.
func OpenWithOptions(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open file store: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	key, legacy, err := loadOrCreateKey(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	defer clear(key)
	secretsDir := filepath.Join(dir, secretsDirName)
	if err := os.MkdirAll(secretsDir, 0o700); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	sl, err := newSealer(key)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if legacy {
		if err := upgradeStore(dir, sl, key); err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
	}
	removeStaleTemps(dir, staleTempAge)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		dir:        dir,
		secretsDir: secretsDir,
		lockPath:   filepath.Join(dir, lockFileName),
		sealer:     sl,
		now:        now,
	}, nil
}

// Dir returns the directory the store keeps its files in.
func (s *Store) Dir() string { return s.dir }

// StagePending implements stores.Store.
func (s *Store) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	if err := checkStage(req.SecretID, req.Token, req.Material); err != nil {
		return secret.Version{}, fmt.Errorf("stage pending: %w", err)
	}
	var out secret.Version
	err := s.update(ctx, req.SecretID, func(d *document) (bool, error) {
		if r := d.find(req.Token); r != nil {
			// A retried create: hand back what the first attempt recorded, material
			// and stages untouched.
			out = r.version(d.SecretID)
			return false, nil
		}
		r, err := s.newRecord(d, req.Token, req.Material, req.Metadata)
		if err != nil {
			return false, err
		}
		d.stage(r)
		out = r.version(d.SecretID)
		return true, nil
	})
	if err != nil {
		return secret.Version{}, fmt.Errorf("stage pending %s: %w", req.SecretID, err)
	}
	return out, nil
}

// Put writes material as the secret's new current version, demoting the old current to
// previous, in one atomic change. It seeds secrets Keyturn did not create, such as a
// database admin password. Each call makes a new version under a random token, so a
// retried Put makes another version; it also supersedes any pending version, exactly as
// staging does.
func (s *Store) Put(ctx context.Context, id secret.ID, material secret.Material, metadata map[string]string) (secret.Version, error) {
	token, err := newPutToken()
	if err != nil {
		return secret.Version{}, fmt.Errorf("put %s: %w", id, err)
	}
	if err := checkStage(id, token, material); err != nil {
		return secret.Version{}, fmt.Errorf("put: %w", err)
	}
	var out secret.Version
	err = s.update(ctx, id, func(d *document) (bool, error) {
		r, err := s.newRecord(d, token, material, metadata)
		if err != nil {
			return false, err
		}
		d.stage(r)
		if _, err := d.promote(token); err != nil {
			return false, err
		}
		out = r.version(d.SecretID)
		return true, nil
	})
	if err != nil {
		return secret.Version{}, fmt.Errorf("put %s: %w", id, err)
	}
	return out, nil
}

// Read implements stores.Store.
func (s *Store) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	if !stage.Valid() {
		return secret.Version{}, nil, fmt.Errorf("read %s: unknown stage %q", id, stage)
	}
	d, err := s.load(ctx, id)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read %s: %w", id, err)
	}
	var r *record
	if d != nil {
		r = d.holder(stage)
	}
	if r == nil {
		return secret.Version{}, nil, fmt.Errorf("read %s: no %s version: %w", id, stage, stores.ErrNotFound)
	}
	return s.reveal(d, r, "read")
}

// ReadVersion implements stores.Store.
func (s *Store) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	d, err := s.load(ctx, id)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read version %s: %w", id, err)
	}
	var r *record
	if d != nil {
		r = d.find(token)
	}
	if r == nil {
		return secret.Version{}, nil, fmt.Errorf("read version %s: version %q: %w", id, token, stores.ErrNotFound)
	}
	return s.reveal(d, r, "read version")
}

// Promote implements stores.Store.
func (s *Store) Promote(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	if err := id.Validate(); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	err := s.update(ctx, id, func(d *document) (bool, error) { return d.promote(token) })
	if err != nil {
		return fmt.Errorf("promote %s: %w", id, err)
	}
	return nil
}

// DiscardPending implements stores.Store.
func (s *Store) DiscardPending(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	if err := id.Validate(); err != nil {
		return fmt.Errorf("discard pending: %w", err)
	}
	// Peek without the lock first: discarding what is already gone, the common retry,
	// then costs neither a lock nor a write, and leaves no file behind for an unknown ID.
	d, err := s.load(ctx, id)
	if err != nil {
		return fmt.Errorf("discard pending %s: %w", id, err)
	}
	if d == nil || d.find(token) == nil {
		return nil
	}
	err = s.update(ctx, id, func(d *document) (bool, error) { return d.discard(token) })
	if err != nil {
		return fmt.Errorf("discard pending %s: %w", id, err)
	}
	return nil
}

// ListVersions implements stores.Store. It decrypts nothing, so it works even when the
// store key does not match.
func (s *Store) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	d, err := s.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", id, err)
	}
	if d == nil || len(d.Versions) == 0 {
		return nil, fmt.Errorf("list versions %s: %w", id, stores.ErrNotFound)
	}
	out := make([]secret.Version, 0, len(d.Versions))
	for _, r := range d.sorted() {
		out = append(out, r.version(d.SecretID))
	}
	return out, nil
}

// load reads id's document without locking (see loadDocument); nil if it has none.
func (s *Store) load(ctx context.Context, id secret.ID) (*document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.loadVerified(id)
}

// loadVerified reads id's document and checks its MAC; nil if it has none.
func (s *Store) loadVerified(id secret.ID) (*document, error) {
	d, err := loadDocument(s.secretsDir, id)
	if err != nil || d == nil {
		return d, err
	}
	if err := s.sealer.verify(d); err != nil {
		// The callers name the secret; the path tells the operator which file to restore.
		name, _ := docName(id)
		path := filepath.Join(s.secretsDir, name)
		if errors.Is(err, ErrTampered) {
			return nil, fmt.Errorf("%s: %w; nothing in it is trusted: restore it from a backup, or remove it and seed the secret again", path, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// update applies change to id's document (a new one if the secret has none) under both
// locks, and writes the result if change reports it changed anything.
func (s *Store) update(ctx context.Context, id secret.ID, change func(*document) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := filelock.Lock(ctx, s.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	d, err := s.loadVerified(id)
	if err != nil {
		return err
	}
	if d == nil {
		d = newDocument(id)
	}
	changed, err := change(d)
	if err != nil || !changed {
		return err
	}
	s.sealer.sign(d)
	return saveDocument(s.secretsDir, d)
}

// newRecord seals material into a new version numbered next in d. It does not add the
// version to d.
func (s *Store) newRecord(d *document, token secret.VersionToken, m secret.Material, metadata map[string]string) (*record, error) {
	nonce, ciphertext, err := s.sealer.seal(d.SecretID, token, m)
	if err != nil {
		return nil, fmt.Errorf("seal version %q: %w", token, err)
	}
	r := &record{
		Token:      token,
		Number:     d.NextNumber,
		CreatedAt:  s.now().UTC(),
		KeyID:      s.sealer.keyID,
		Nonce:      nonce,
		Ciphertext: ciphertext,
	}
	if len(metadata) > 0 {
		r.Metadata = maps.Clone(metadata)
	}
	d.NextNumber++
	return r, nil
}

// reveal decrypts r's material for a read.
func (s *Store) reveal(d *document, r *record, op string) (secret.Version, secret.Material, error) {
	m, err := s.sealer.open(d.SecretID, r.Token, r)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("%s %s: version %q: %w", op, d.SecretID, r.Token, err)
	}
	return r.version(d.SecretID), m, nil
}

// checkStage validates what a new version needs before any lock is taken.
func checkStage(id secret.ID, token secret.VersionToken, m secret.Material) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := token.Validate(); err != nil {
		return err
	}
	if len(m) == 0 {
		return fmt.Errorf("version %q of %s has no material", token, id)
	}
	return nil
}

// newPutToken makes the token of a version written by Put.
func newPutToken() (secret.VersionToken, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make version token: %w", err)
	}
	return secret.VersionToken("put-" + hex.EncodeToString(b)), nil
}
