package codec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/durable"
	"github.com/keyturn/keyturn/internal/filelock"
	"github.com/keyturn/keyturn/internal/privfile"
)

// keyFileHeader opens every key file Keyturn writes.
const keyFileHeader = "# Keyturn payload encryption keys (AES-256-GCM), current first. Keep old keys\n# until no workflow history needs them.\n"

// CreateKeyFile makes a key file at path holding one fresh key, with mode 0600 (and its
// directory 0700 when missing). It never replaces anything at path: when something is
// there it returns false and changes nothing. The file appears whole (durable.CreateNew),
// so a process that finds it reads a complete key, and processes racing to create it end
// up sharing one.
func CreateKeyFile(path string) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("codec key file: %w", err)
	}
	k, err := newKey()
	if err != nil {
		return false, err
	}
	created, err = durable.CreateNew(path, ".codec-key-*", []byte(keyFileHeader+k+"\n"))
	if err != nil {
		return false, fmt.Errorf("codec key file %s: %w", path, err)
	}
	return created, nil
}

// RotateKeyFile puts a fresh key first in the key file at path: it encrypts from the
// next start of each process that reads the file, and every key below it still
// decrypts. It returns how many keys the file holds now. With several processes, use
// AddKeyFile and PromoteKeyFile instead, so that no process meets a payload under a key
// it has not loaded yet.
func RotateKeyFile(path string) (int, error) {
	return editKeyFile(path, func(f *keyLines) error {
		if f.added() >= 0 {
			return errors.New("a key added before waits to be promoted: run `keyturn codec-key promote` instead")
		}
		return f.insert(0, "")
	})
}

// addedMark is the comment AddKeyFile writes above the key it adds, and PromoteKeyFile
// removes when it promotes that key: without it a second promote would swap the keys
// back, and the older key would encrypt again.
const addedMark = "# added, not promoted yet: `keyturn codec-key promote` once every process has loaded this file\n"

// AddKeyFile puts a fresh key second in the key file at path, marked as added:
// processes that read the file learn to decrypt with it, and nothing encrypts with it
// until PromoteKeyFile. A key added before and not promoted yet is refused. It returns
// how many keys the file holds now.
func AddKeyFile(path string) (int, error) {
	return editKeyFile(path, func(f *keyLines) error {
		if f.added() >= 0 {
			return errors.New("a key added before waits to be promoted: run `keyturn codec-key promote` first")
		}
		return f.insert(1, addedMark)
	})
}

// PromoteKeyFile makes the key AddKeyFile added (second, and loaded by every process
// since) the first, which encrypts; the previous first stays to decrypt. With no added
// key it changes nothing.
func PromoteKeyFile(path string) (int, error) {
	return editKeyFile(path, func(f *keyLines) error {
		mark := f.added()
		if mark < 0 {
			return errors.New("no added key waits to be promoted: run `keyturn codec-key add` first")
		}
		f.lines[f.keys[0]], f.lines[f.keys[1]] = f.lines[f.keys[1]], f.lines[f.keys[0]]
		f.lines = append(f.lines[:mark], f.lines[mark+1:]...)
		return nil
	})
}

// keyLines is a key file as lines (each ending in "\n"), with the indexes of its key
// lines in order, so an edit keeps every comment where it was.
type keyLines struct {
	lines []string
	keys  []int
}

// insert adds a fresh key as the file's n-th key (0 first), with the comment line
// above it when comment is not empty.
func (f *keyLines) insert(n int, comment string) error {
	k, err := newKey()
	if err != nil {
		return err
	}
	at := len(f.lines)
	if n < len(f.keys) {
		at = f.keys[n]
	} else if len(f.keys) > 0 {
		at = f.keys[len(f.keys)-1] + 1
	}
	add := []string{k + "\n"}
	if comment != "" {
		add = []string{comment, k + "\n"}
	}
	f.lines = append(f.lines[:at], append(add, f.lines[at:]...)...)
	return nil
}

// added returns the index of the line marking the second key as added and not yet
// promoted, or -1.
func (f *keyLines) added() int {
	if len(f.keys) >= 2 && f.keys[1] > 0 && f.lines[f.keys[1]-1] == addedMark {
		return f.keys[1] - 1
	}
	return -1
}

// editKeyFile changes the key file at path (or, for a link, the file it points to) under
// a lock beside it: one read, checked as LoadKeyFile checks it, edited, written to a
// synced temporary file (durable.WriteTemp) given the old file's owner, renamed over the
// old one and the directory synced. A reader sees the old file or the new one, never half of
// one, and a crash leaves one of the two.
func editKeyFile(path string, edit func(*keyLines) error) (int, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := filelock.Lock(ctx, target+".lock")
	if err != nil {
		return 0, fmt.Errorf("codec key file %s: another change holds %s.lock: %w", path, target, err)
	}
	defer unlock()
	info, err := os.Stat(target)
	if err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	if err := privfile.Check(target, info); err != nil {
		return 0, fmt.Errorf("codec key file %w", err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	if _, err := parseKeys(target, data); err != nil {
		return 0, err
	}
	f := &keyLines{}
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l == "" {
			continue
		}
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			f.keys = append(f.keys, len(f.lines))
		}
		f.lines = append(f.lines, l)
	}
	if err := edit(f); err != nil {
		return 0, fmt.Errorf("codec key file %s: %w", path, err)
	}
	n := 0
	for _, l := range f.lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			n++
		}
	}
	uid, gid := privfile.Owner(info)
	dir := filepath.Dir(target)
	tmp, err := durable.WriteTemp(dir, ".codec-key-*", []byte(strings.Join(f.lines, "")))
	if err != nil {
		return 0, fmt.Errorf("codec key file %s: %w (changing it needs write access to %s)", path, err, dir)
	}
	defer os.Remove(tmp) // a no-op once renamed
	// The file keeps its owner: rotated as root, it must stay readable by the workers.
	if uid != -1 && uid != os.Geteuid() || gid != -1 && gid != os.Getegid() {
		if err := os.Chown(tmp, uid, gid); err != nil {
			return 0, fmt.Errorf("codec key file %s: keep the owner %d:%d: %w; run it as that user", path, uid, gid, err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	return n, nil
}
