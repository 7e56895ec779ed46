package file

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyturn/keyturn/internal/durable"
)

const (
	keyFileName = "store.key"
	// keyFileHeader is the first line of a key file written since format 2. A store whose
	// key file lacks it was written by an older Keyturn and is upgraded once by Open.
	// The marker lives in the key file because that is the one file nobody can rewrite
	// without reading the key: anyone who could drop the marker to make Open accept
	// unauthenticated files again could read every secret anyway.
	keyFileHeader = "keyturn-file-store-key format=2"
	keySize       = 32 // AES-256
	// keyFileLimit bounds how much of a key file is read: a valid one is under 100 bytes.
	keyFileLimit = 1024
)

// ErrInsecureKey is returned by Open when store.key can be read or written by anyone but
// its owner. Whoever can read the key can read every secret in the store.
var ErrInsecureKey = errors.New("store key file is accessible to other users")

// ErrMissingKey is returned by Open when store.key is gone but the store holds secrets:
// a new key could not read them, and writing under it would bury the old key's data.
var ErrMissingKey = errors.New("store key file is missing but the store holds secrets")

// loadOrCreateKey returns the store key from dir/store.key, creating it first if the
// store is new. A store that already holds secret documents never gets a new key: the
// key was moved or deleted, and the only fix is to put it back. legacy reports a key
// file without keyFileHeader, whose store may still hold format 1 files.
func loadOrCreateKey(dir string) (key []byte, legacy bool, err error) {
	path := filepath.Join(dir, keyFileName)
	key, legacy, err = readKey(path)
	if err == nil {
		return key, legacy, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	n, err := countDocuments(filepath.Join(dir, secretsDirName))
	if err != nil {
		return nil, false, fmt.Errorf("read store key: %w", err)
	}
	if n > 0 {
		return nil, false, fmt.Errorf("read store key: %s: %w (%d secret files in %s were encrypted with it); "+
			"restore that file (mode 0600) from a backup or from where it was moved; "+
			"a new key cannot decrypt them, so none is made. To start an empty store instead, move %s aside",
			path, ErrMissingKey, n, filepath.Join(dir, secretsDirName), filepath.Join(dir, secretsDirName))
	}
	// Another process opening a new store at the same moment may win the race: then
	// createKey leaves its key in place and we read that.
	if err := createKey(dir, path); err != nil {
		return nil, false, err
	}
	return readKey(path)
}

// readKey reads a hex key, refusing a file that others may read: the check runs on the
// opened file so it cannot be swapped between the check and the read. legacy reports a
// key file in the format before keyFileHeader.
func readKey(path string) (key []byte, legacy bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("read store key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("read store key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("read store key: %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&^0o600 != 0 {
		return nil, false, fmt.Errorf("read store key: %s has mode %#o: %w; run `chmod 600 %s`", path, perm, ErrInsecureKey, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, keyFileLimit))
	if err != nil {
		return nil, false, fmt.Errorf("read store key: %w", err)
	}
	defer clear(data)
	content := strings.TrimSpace(string(data))
	legacy = true
	if header, rest, ok := strings.Cut(content, "\n"); ok && strings.TrimSpace(header) == keyFileHeader {
		content, legacy = strings.TrimSpace(rest), false
	}
	// The decode error is dropped on purpose: hex.InvalidByteError quotes the key's bytes.
	key, err = hex.DecodeString(content)
	if err != nil || len(key) != keySize {
		return nil, false, fmt.Errorf("read store key: %s does not hold a %d-byte key in hex", path, keySize)
	}
	return key, legacy, nil
}

// keyFileContent is what a key file holds: the header, then the key in hex.
func keyFileContent(key []byte) []byte {
	return []byte(keyFileHeader + "\n" + hex.EncodeToString(key) + "\n")
}

// createKey writes a fresh random key to a temporary file and links it into place, so
// the key file appears complete or not at all, and never replaces an existing key (that
// would make every secret already written unreadable).
func createKey(dir, path string) error {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create store key: %w", err)
	}
	if _, err := durable.CreateNew(path, "."+keyFileName+".*.tmp", keyFileContent(key)); err != nil {
		return fmt.Errorf("create store key: %w", err)
	}
	return nil
}

// keyID names a key without revealing it: the first 8 hex digits of its SHA-256. Each
// blob records the ID of the key that sealed it, so opening with another key says so
// instead of failing as if the file were corrupt.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// countDocuments counts the secret documents in secretsDir (none if it does not exist).
// Temporary files of interrupted writes are not documents.
func countDocuments(secretsDir string) (int, error) {
	entries, err := os.ReadDir(secretsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), docSuffix) {
			n++
		}
	}
	return n, nil
}
