package codec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/keyturn/keyturn/internal/privfile"
)

// LoadKeyFile reads keys from a file of hex-encoded 32-byte keys, one per line, the
// current one first; blank lines and lines starting with # are ignored. With create, a
// missing file is made with one fresh key and mode 0600. A file readable by others is
// refused.
func LoadKeyFile(path string, create bool) ([][]byte, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if _, err := CreateKeyFile(path); err != nil {
			return nil, err
		}
		info, err = os.Stat(path)
	}
	if err != nil {
		return nil, fmt.Errorf("codec key file: %w", err)
	}
	if err := privfile.Check(path, info); err != nil {
		return nil, fmt.Errorf("codec key file %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("codec key file: %w", err)
	}
	return parseKeys(path, data)
}

// parseKeys reads the keys of a key file's content.
func parseKeys(path string, data []byte) ([][]byte, error) {
	var keys [][]byte
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != KeySize {
			// Never echo the line: it is key material.
			return nil, fmt.Errorf("codec key file %s:%d: not a hex-encoded %d-byte key", path, n+1, KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("codec key file %s holds no key", path)
	}
	return keys, nil
}

// WatchKeyFile is the codec of a key file (see LoadKeyFile), read again when the file
// changes, so a server that only decodes and encodes for the Web UI takes a rotated key
// without a restart: put the new key first and keep the old ones below it for older
// histories. A changed file that does not load, or a removed one, is reported to warn and
// the keys read before stay in use: they still decrypt what they encrypted.
func WatchKeyFile(path string, warn func(error)) (converter.PayloadCodec, error) {
	w := &watchedFile[*Codec]{path: path, warn: warn, load: func(path string, data []byte) (*Codec, error) {
		keys, err := parseKeys(path, data)
		if err != nil {
			return nil, err
		}
		return New(keys...)
	}}
	if _, err := w.get(); err != nil {
		return nil, err
	}
	return watchedCodec{w}, nil
}

type watchedCodec struct{ file *watchedFile[*Codec] }

func (c watchedCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	cur, err := c.file.get()
	if err != nil {
		return nil, err
	}
	return cur.Encode(payloads)
}

func (c watchedCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	cur, err := c.file.get()
	if err != nil {
		return nil, err
	}
	return cur.Decode(payloads)
}

// keyFileHeader opens every key file Keyturn writes.
const keyFileHeader = "# Keyturn payload encryption keys (AES-256-GCM), current first. Keep old keys\n# until no workflow history needs them.\n"

// CreateKeyFile makes a key file at path holding one fresh key, with mode 0600 (and its
// directory 0700 when missing). It never replaces a file: when path exists it returns
// false and changes nothing, so two processes racing to create it share one key.
func CreateKeyFile(path string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("codec key file: %w", err)
	}
	k, err := newKey()
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("codec key file: %w", err)
	}
	if _, err := f.WriteString(keyFileHeader + k + "\n"); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("codec key file: %w", err)
	}
	return true, f.Close()
}

// RotateKeyFile puts a fresh key first in the key file at path and keeps every line that
// was there (older keys and comments) below it, so payloads encrypted before still
// decrypt. The file must load as LoadKeyFile reads it; it is replaced in one rename with
// mode 0600, so a reader sees the old file or the new one, never half of it. It returns
// how many keys the file holds now.
func RotateKeyFile(path string) (int, error) {
	keys, err := LoadKeyFile(path, false)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	k, err := newKey()
	if err != nil {
		return 0, err
	}
	// The new key goes above the first key line, so a leading comment stays on top.
	lines := strings.SplitAfter(string(data), "\n")
	at := 0
	for at < len(lines) {
		if l := strings.TrimSpace(lines[at]); l != "" && !strings.HasPrefix(l, "#") {
			break
		}
		at++
	}
	content := strings.Join(lines[:at], "") + k + "\n" + strings.Join(lines[at:], "")
	if err := replaceFile(path, content); err != nil {
		return 0, fmt.Errorf("codec key file: %w", err)
	}
	return len(keys) + 1, nil
}

// replaceFile writes content to a new owner-only file beside path and renames it over
// path.
func replaceFile(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".codec-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(content)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newKey returns a fresh random key, hex-encoded as a key file holds it.
func newKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("codec key: %w", err)
	}
	return hex.EncodeToString(k), nil
}
