package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyturn/keyturn/internal/durable"
	"github.com/keyturn/keyturn/secret"
)

const (
	secretsDirName = "secrets"
	lockFileName   = "store.lock"
	// idSeparator replaces '/' in file names. '%' is outside the ID alphabet, so the
	// mapping from ID to name cannot collide, and one flat directory avoids an ID such
	// as "prod/db" clashing with the directory of "prod/db/app".
	idSeparator = "%2F"
	docSuffix   = ".json"
)

// docName maps a secret ID to its file name under secrets/. The ID must already be
// valid; the checks here are a second guard against a name leaving the directory.
func docName(id secret.ID) (string, error) {
	if err := id.Validate(); err != nil {
		return "", err
	}
	name := strings.ReplaceAll(string(id), "/", idSeparator) + docSuffix
	// Valid IDs start with a letter or digit, so a name never starts with '.', the
	// prefix of our temporary files, and never is "." or "..".
	if !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("secret id %q does not map to a safe file name", string(id))
	}
	return name, nil
}

// loadDocument reads a secret's document in the current format; it does not verify
// the MAC (the Store does, holding the key). A secret never written gives (nil, nil).
// Reads need no lock: writers replace the file by rename, so a reader sees the old
// document or the new one, never a mix.
func loadDocument(dir string, id secret.ID) (*document, error) {
	d, err := loadAnyFormat(dir, id)
	if err != nil || d == nil {
		return d, err
	}
	if d.Format == formatLegacy {
		// Open upgrades every format 1 file before the store is used, so one found
		// later was put there by hand or by an older Keyturn: its stages are not
		// authenticated, and accepting it would let anyone undo the upgrade.
		name, _ := docName(id)
		return nil, fmt.Errorf("%s is in format 1, whose stages are not authenticated, in a store already upgraded to format 2: %w", filepath.Join(dir, name), ErrTampered)
	}
	return d, nil
}

// loadAnyFormat reads a secret's document in format 1 or 2, checking its shape only.
func loadAnyFormat(dir string, id secret.ID) (*document, error) {
	name, err := docName(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d document
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if err := d.check(id); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return &d, nil
}

// saveDocument replaces a secret's document atomically.
func saveDocument(dir string, d *document) error {
	name, err := docName(d.SecretID)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeFileAtomic(dir, name, data)
}

// writeFileAtomic writes data to a temporary file in dir, flushes it, and renames it
// over name, then flushes the directory so the rename survives a crash. After a crash
// the file holds the old content or the new, and at worst a stray temporary is left,
// which the next Open removes (stale.go). Callers hold the store lock.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := durable.Replace(filepath.Join(dir, name), "."+name+".*.tmp", data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
