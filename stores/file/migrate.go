package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/filelock"
	"github.com/keyturn/keyturn/secret"
)

// upgradeWait bounds how long Open waits for the store lock to upgrade a store.
const upgradeWait = 30 * time.Second

// upgradeStore brings a store written by a Keyturn before format 2 up to date, once:
// every format 1 document gets its MAC, then the key file gets its header, which marks
// the store as upgraded. From then on a format 1 document is refused (loadDocument), so
// nobody can undo the upgrade by stripping a MAC. The format 1 stages are taken on
// trust here, once; they are what the store served until now.
//
// It runs under the store lock. A crash part way leaves the key file unmarked, and the
// next Open finishes: documents already upgraded are verified, the others upgraded.
func upgradeStore(dir string, sl *sealer, key []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), upgradeWait)
	defer cancel()
	unlock, err := filelock.Lock(ctx, filepath.Join(dir, lockFileName))
	if err != nil {
		return fmt.Errorf("upgrade store to format %d: %w", formatVersion, err)
	}
	defer unlock()
	// Another process may have upgraded the store while we waited for the lock.
	again, legacy, err := readKey(filepath.Join(dir, keyFileName))
	if err != nil {
		return fmt.Errorf("upgrade store to format %d: %w", formatVersion, err)
	}
	defer clear(again)
	if !bytes.Equal(again, key) {
		return fmt.Errorf("upgrade store to format %d: store.key changed while opening; open the store again", formatVersion)
	}
	if !legacy {
		return nil
	}
	secretsDir := filepath.Join(dir, secretsDirName)
	entries, err := os.ReadDir(secretsDir)
	if err != nil {
		return fmt.Errorf("upgrade store to format %d: %w", formatVersion, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), docSuffix) {
			continue
		}
		if err := upgradeDocument(secretsDir, e.Name(), sl); err != nil {
			return fmt.Errorf("upgrade store to format %d: %s: %w", formatVersion, filepath.Join(secretsDir, e.Name()), err)
		}
	}
	if err := writeFileAtomic(dir, keyFileName, keyFileContent(key)); err != nil {
		return fmt.Errorf("upgrade store to format %d: %w", formatVersion, err)
	}
	return nil
}

// upgradeDocument adds a MAC to one format 1 document, and verifies one already
// upgraded by an interrupted earlier run.
func upgradeDocument(secretsDir, name string, sl *sealer) error {
	data, err := os.ReadFile(filepath.Join(secretsDir, name))
	if err != nil {
		return err
	}
	var head struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	id := secret.ID(head.SecretID)
	if want, err := docName(id); err != nil || want != name {
		return errors.New("file name does not match the secret ID it holds")
	}
	d, err := loadAnyFormat(secretsDir, id)
	if err != nil {
		return err
	}
	if d.Format == formatVersion {
		return sl.verify(d)
	}
	for _, r := range d.Versions {
		// A version sealed under another key would be signed as if it belonged.
		if r.KeyID != sl.keyID {
			return fmt.Errorf("version %q: %w (version sealed with key %s, store key is %s)", r.Token, ErrKeyMismatch, r.KeyID, sl.keyID)
		}
	}
	d.Format = formatVersion
	sl.sign(d)
	return saveDocument(secretsDir, d)
}
