// Package durable writes files that survive a crash whole: the content goes to a
// temporary file beside its destination (mode 0600 before a byte is written), is synced,
// and only then is renamed or linked into place, after which the directory is synced so
// the new name survives too. A reader sees the old file or the new one, never a part.
// The file store, the agent and the codec key file use it.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteTemp writes data to a new file in dir named after pattern (as os.CreateTemp
// names it), with mode 0600, synced and closed, and returns its path. On failure
// nothing is left behind. The caller renames or links it into place and calls SyncDir.
func WriteTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = f.Chmod(0o600) // CreateTemp makes it 0600 already; say so before any data
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Replace makes data the content of path, in one rename: see the package doc. The
// temporary file is named after pattern in path's directory.
func Replace(path, pattern string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := WriteTemp(dir, pattern, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// CreateNew writes data to path only if nothing is there, linking a complete file into
// place, so a reader that finds path reads all of it and racing creators end with one
// of theirs. It reports whether this call created it; an existing path is not an error.
func CreateNew(path, pattern string, data []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	tmp, err := WriteTemp(dir, pattern, data)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp) // the link keeps the file
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, SyncDir(dir)
}

// SyncDir flushes a directory's entries (a rename or a link) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
