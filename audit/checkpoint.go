package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/privfile"
)

// Checkpoint is a signed statement of chain heads at a time: "chain C held N records and
// the last one hashed to H". A chain rewritten and rehashed before N no longer matches it.
// A checkpoint lists only the chains that changed since the signer's previous one; Verify
// takes, for each chain, the latest head any trusted checkpoint signed.
type Checkpoint struct {
	Time time.Time `json:"time"`
	// KeyID names the signing key: the first 16 hex digits of SHA-256 of the public key.
	KeyID string `json:"keyId"`
	Heads []Head `json:"heads"`
	// Signature is Ed25519 over SignedText, base64.
	Signature string `json:"signature"`
}

// SignedText is what the signature covers: a header line, the time, then one line per
// head, sorted by chain.
func (c Checkpoint) SignedText() []byte {
	var b strings.Builder
	b.WriteString("keyturn audit checkpoint v1\n")
	b.WriteString(c.Time.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString(c.KeyID + "\n")
	heads := append([]Head(nil), c.Heads...)
	sort.Slice(heads, func(i, j int) bool { return heads[i].Chain < heads[j].Chain })
	for _, h := range heads {
		b.WriteString(h.Chain + "\t" + strconv.FormatInt(h.Count, 10) + "\t" + h.Hash + "\n")
	}
	return []byte(b.String())
}

// Signer signs checkpoints with an Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner wraps an Ed25519 private key.
func NewSigner(key ed25519.PrivateKey) *Signer { return &Signer{key: key} }

// Public returns the public key that verifies the signer's checkpoints.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns a signed checkpoint over heads at t.
func (s *Signer) Sign(t time.Time, heads []Head) (Checkpoint, error) {
	for _, h := range heads {
		if !validChainName(h.Chain) || !validHash(h.Hash) {
			// Both go into the signed text line by line: a tab or newline in either could
			// make the text say something else.
			return Checkpoint{}, fmt.Errorf("audit checkpoint: the head of chain %q cannot be signed (a chain name or hash that is not one: the trail was damaged; run keyturn audit verify)", h.Chain)
		}
	}
	c := Checkpoint{Time: t.UTC(), KeyID: KeyID(s.Public()), Heads: heads}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c.SignedText()))
	return c, nil
}

// KeyID is the short name of a public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// VerifySignature reports whether c is signed by one of keys.
func (c Checkpoint) VerifySignature(keys []ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if KeyID(k) == c.KeyID && ed25519.Verify(k, c.SignedText(), sig) {
			return true
		}
	}
	return false
}

const (
	privatePEMType = "KEYTURN AUDIT SIGNING KEY"
	publicPEMType  = "KEYTURN AUDIT PUBLIC KEY"
)

// LoadOrCreateSigningKey reads the Ed25519 key at path, creating it (0600, directory
// 0700) when it does not exist, and writes its public key beside it as path + ".pub".
func LoadOrCreateSigningKey(path string) (*Signer, error) {
	s, err := LoadSigningKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadSigningKey(path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: privatePEMType, Bytes: priv.Seed()}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	s = NewSigner(priv)
	if err := WritePublicKey(path+".pub", s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadSigningKey reads an Ed25519 signing key written by LoadOrCreateSigningKey. A key
// file readable by others is refused: anyone who can read it can forge checkpoints.
func LoadSigningKey(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := privfile.Check(path, fi); err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != privatePEMType || len(blk.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key %s is not a Keyturn audit signing key (PEM %q holding a %d-byte Ed25519 seed)", path, privatePEMType, ed25519.SeedSize)
	}
	return NewSigner(ed25519.NewKeyFromSeed(blk.Bytes)), nil
}

// MarshalPublicKey is pub as the PEM LoadPublicKey reads.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: publicPEMType, Bytes: pub})
}

// WritePublicKey writes pub as PEM to path (0644: it is meant to be copied elsewhere).
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	if err := os.WriteFile(path, MarshalPublicKey(pub), 0o644); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	return nil
}

// LoadPublicKey reads a public key written by WritePublicKey, or the public half of a
// signing key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	switch {
	case blk != nil && blk.Type == publicPEMType && len(blk.Bytes) == ed25519.PublicKeySize:
		return ed25519.PublicKey(blk.Bytes), nil
	case blk != nil && blk.Type == privatePEMType && len(blk.Bytes) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(blk.Bytes).Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("audit public key %s is not a Keyturn audit key (PEM %q)", path, publicPEMType)
}

// Checkpointer signs checkpoints over a sink's heads that changed since the last one it
// or any other signer stored.
type Checkpointer struct {
	Sink   Sink
	Signer *Signer
}

// Checkpoint signs and stores a checkpoint of every chain whose head moved since the
// latest checkpoint it signed, and returns it; it stores nothing and returns false when
// none moved.
func (c Checkpointer) Checkpoint(ctx context.Context, now time.Time) (Checkpoint, bool, error) {
	heads, err := c.Sink.Heads(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	cps, err := c.Sink.Checkpoints(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	// Only this signer's own checkpoints say what is signed already: a forged one that
	// claims the current heads must not stop the real signer from signing them.
	own := []ed25519.PublicKey{c.Signer.Public()}
	signed := latestHeads(cps, func(cp Checkpoint) bool { return cp.VerifySignature(own) })
	var changed []Head
	for _, h := range heads {
		if !validChainName(h.Chain) || !validHash(h.Hash) {
			continue // a damaged head is not signed, and does not keep the others from it; verify reports it
		}
		if s, ok := signed[h.Chain]; !ok || s.Count != h.Count || s.Hash != h.Hash {
			changed = append(changed, h)
		}
	}
	if len(changed) == 0 {
		return Checkpoint{}, false, nil
	}
	cp, err := c.Signer.Sign(now, changed)
	if err != nil {
		return Checkpoint{}, false, err
	}
	return cp, true, c.Sink.AddCheckpoint(ctx, cp)
}

// latestHeads is, per chain, the head with the most records among the checkpoints that
// pass keep (all when keep is nil).
func latestHeads(cps []Checkpoint, keep func(Checkpoint) bool) map[string]Head {
	out := map[string]Head{}
	for _, cp := range cps {
		if keep != nil && !keep(cp) {
			continue
		}
		for _, h := range cp.Heads {
			if cur, ok := out[h.Chain]; !ok || h.Count >= cur.Count {
				out[h.Chain] = h
			}
		}
	}
	return out
}
