package file

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrTampered is returned when a secret's file fails authentication as a whole: its
// stages, version numbers, metadata or versions were changed outside Keyturn, or it was
// copied in from another secret or store.
var ErrTampered = errors.New("secret file failed authentication (stages, numbers, metadata or versions edited outside Keyturn, or the file was copied in)")

// macInfo separates the document MAC key from the encryption key: both come from the
// one store key, and HKDF with distinct labels makes them independent.
const macInfo = "keyturn/stores/file: document MAC, format 2"

// deriveMACKey derives the key that authenticates whole documents from the store key.
func deriveMACKey(storeKey []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, storeKey, nil, macInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("derive document key: %w", err)
	}
	return k, nil
}

// sign records the store key's ID on d and sets its MAC over everything it holds.
func (s *sealer) sign(d *document) {
	d.KeyID = s.keyID
	d.MAC = s.mac(d)
}

// verify checks d's MAC. A document signed under another key gives ErrKeyMismatch, not
// ErrTampered, so a replaced store.key is reported as such.
func (s *sealer) verify(d *document) error {
	if d.KeyID != s.keyID {
		return fmt.Errorf("%w (file authenticated with key %s, store key is %s)", ErrKeyMismatch, d.KeyID, s.keyID)
	}
	if !hmac.Equal(d.MAC, s.mac(d)) {
		return ErrTampered
	}
	return nil
}

// mac is HMAC-SHA256 over a canonical encoding of every field of d but the MAC itself.
// It does not rely on JSON re-encoding being stable: each field is length-prefixed in a
// fixed order, and metadata keys are sorted.
func (s *sealer) mac(d *document) []byte {
	h := hmac.New(sha256.New, s.macKey)
	var b []byte
	b = appendField(b, macInfo)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Format))
	b = appendField(b, string(d.SecretID))
	b = binary.BigEndian.AppendUint64(b, uint64(d.NextNumber))
	b = appendField(b, d.KeyID)
	b = binary.BigEndian.AppendUint64(b, uint64(len(d.Versions)))
	for _, r := range d.Versions {
		b = appendField(b, string(r.Token))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Number))
		b = binary.BigEndian.AppendUint64(b, uint64(len(r.Stages)))
		for _, st := range r.Stages {
			b = appendField(b, string(st))
		}
		b = appendField(b, r.CreatedAt.UTC().Format(time.RFC3339Nano))
		b = binary.BigEndian.AppendUint64(b, uint64(len(r.Metadata)))
		for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			b = appendField(b, k)
			b = appendField(b, r.Metadata[k])
		}
		b = appendField(b, r.KeyID)
		b = appendField(b, string(r.Nonce))
		b = appendField(b, string(r.Ciphertext))
	}
	h.Write(b)
	return h.Sum(nil)
}

// appendField appends v with its length, so no two field sequences encode alike.
func appendField(b []byte, v string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}
