package file

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyturn/keyturn/secret"
)

var (
	// ErrKeyMismatch is returned when a version was sealed under another store key: the
	// store.key file was replaced, or the secrets directory was copied from another store.
	ErrKeyMismatch = errors.New("store key does not match the one that wrote this secret")
	// ErrDecrypt is returned when a version's material does not authenticate under the
	// right key: the file was edited, or a blob was moved to another version or secret.
	ErrDecrypt = errors.New("encrypted material failed authentication (file edited, or moved between versions or secrets)")
)

// sealer encrypts and decrypts material with the store key.
type sealer struct {
	aead cipher.AEAD
	// macKey authenticates whole documents (auth.go).
	macKey []byte
	keyID  string
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store key: %w", err)
	}
	macKey, err := deriveMACKey(key)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, macKey: macKey, keyID: keyID(key)}, nil
}

// additionalData binds a blob to its secret and version. IDs cannot hold a NUL byte
// (secret.ID.Validate), so the first NUL always ends the ID and no two pairs collide.
func additionalData(id secret.ID, token secret.VersionToken) []byte {
	return []byte(string(id) + "\x00" + string(token))
}

// seal encrypts the material of one version. A fresh random nonce per seal is safe for
// GCM up to about 2^32 seals under one key, far beyond a dev store's life.
func (s *sealer) seal(id secret.ID, token secret.VersionToken, m secret.Material) (nonce, ciphertext []byte, err error) {
	revealed := make(map[string]string, len(m))
	for field, value := range m {
		revealed[field] = value.Reveal()
	}
	plaintext, err := json.Marshal(revealed)
	if err != nil {
		// json.Marshal of a map[string]string cannot fail; keep its error out anyway
		// in case it ever quotes a value.
		return nil, nil, errors.New("encode material")
	}
	defer clear(plaintext)
	nonce = make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("make nonce: %w", err)
	}
	return nonce, s.aead.Seal(nil, nonce, plaintext, additionalData(id, token)), nil
}

// open decrypts what seal wrote. Errors never carry plaintext.
func (s *sealer) open(id secret.ID, token secret.VersionToken, r *record) (secret.Material, error) {
	if r.KeyID != s.keyID {
		return nil, fmt.Errorf("%w (version sealed with key %s, store key is %s)", ErrKeyMismatch, r.KeyID, s.keyID)
	}
	if len(r.Nonce) != s.aead.NonceSize() {
		return nil, ErrDecrypt
	}
	plaintext, err := s.aead.Open(nil, r.Nonce, r.Ciphertext, additionalData(id, token))
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(plaintext)
	var revealed map[string]string
	if err := json.Unmarshal(plaintext, &revealed); err != nil {
		// A decode error can quote the plaintext: report only that it happened.
		return nil, errors.New("decode material: not a JSON object of strings")
	}
	m := make(secret.Material, len(revealed))
	for field, value := range revealed {
		m[field] = secret.NewSensitive(value)
	}
	return m, nil
}
