package codec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// newKey returns a fresh random key, hex-encoded as a key file holds it.
func newKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("codec key: %w", err)
	}
	return hex.EncodeToString(k), nil
}
