package fake

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Minting is an in-memory target that makes its own keys, like IAM: Mint creates a key,
// Revoke deactivates it (Apply reactivates it) and Purge deletes it. It implements
// rotators.Minter, rotators.Purger and rotators.Sweeper.
type Minting struct {
	mu   sync.Mutex
	keys map[string]*mintedKey
	seq  int

	// After is what PurgeAfter returns.
	After time.Duration
	// MintFailuresAfterCreate makes the next N Mint calls fail after the key exists and
	// Minted was called, as when the step dies before the store has the material.
	MintFailuresAfterCreate int
}

type mintedKey struct {
	secret string
	active bool
	// token is the version token the key was minted for: this target, like an API with
	// idempotency keys or a CA with an issuance log, remembers who asked.
	token secret.VersionToken
}

var (
	_ rotators.Minter  = (*Minting)(nil)
	_ rotators.Purger  = (*Minting)(nil)
	_ rotators.Sweeper = (*Minting)(nil)
)

// NewMinting returns an empty minting target.
func NewMinting() *Minting { return &Minting{keys: map[string]*mintedKey{}} }

// Mint deletes the abandoned keys (see removeOrphans) and makes a new active key.
func (m *Minting) Mint(_ context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	m.mu.Lock()
	m.removeOrphans(req)
	m.seq++
	id := fmt.Sprintf("key-%d", m.seq)
	k := &mintedKey{secret: rand.Text(), active: true, token: req.Token}
	m.keys[id] = k
	fail := m.MintFailuresAfterCreate > 0
	if fail {
		m.MintFailuresAfterCreate--
	}
	m.mu.Unlock()
	md := map[string]string{"key_id": id}
	if req.Minted != nil {
		req.Minted(md)
	}
	if fail {
		return rotators.Generated{}, fmt.Errorf("fake: injected failure after minting %s", id)
	}
	return rotators.Generated{
		Material: secret.Material{"key_id": secret.NewSensitive(id), "key_secret": secret.NewSensitive(k.secret)},
		Metadata: md,
	}, nil
}

// Sweep deletes the keys Mint would delete before minting (see removeOrphans) and mints
// nothing. It returns the IDs of the keys it deleted, sorted.
func (m *Minting) Sweep(_ context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeOrphans(req), nil
}

// removeOrphans deletes the keys an earlier Mint for req.Token left, those req.Abandoned
// names and those minted for the same token, unless a req.Known version holds them, and
// returns their metadata, sorted by ID. The caller holds mu.
func (m *Minting) removeOrphans(req rotators.MintRequest) []map[string]string {
	known := map[string]bool{}
	for _, md := range req.Known {
		known[md["key_id"]] = true
	}
	var ids []string
	for _, md := range req.Abandoned {
		if id := md["key_id"]; !known[id] && m.keys[id] != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for id, k := range m.keys {
		if k.token == req.Token && !known[id] && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var removed []map[string]string
	for _, id := range ids {
		delete(m.keys, id)
		removed = append(removed, map[string]string{"key_id": id})
	}
	return removed
}

// Apply reactivates the version's key.
func (m *Minting) Apply(_ context.Context, req rotators.ApplyRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[req.Version.Metadata["key_id"]]
	if !ok {
		return fmt.Errorf("fake: key %s is gone: %w", req.Version.Metadata["key_id"], rotators.ErrCredentialRejected)
	}
	k.active = true
	return nil
}

// Test accepts an active key with its own secret.
func (m *Minting) Test(_ context.Context, req rotators.TestRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := req.Version.Metadata["key_id"]
	k, ok := m.keys[id]
	if !ok || !k.active || k.secret != req.Material.Get("key_secret").Reveal() {
		return fmt.Errorf("fake: key %s refused: %w", id, rotators.ErrCredentialRejected)
	}
	return nil
}

// Revoke deactivates the version's key unless Keep uses it.
func (m *Minting) Revoke(_ context.Context, req rotators.RevokeRequest) error {
	return m.change(req, func(id string) {
		if k, ok := m.keys[id]; ok {
			k.active = false
		}
	})
}

// Purge deletes the version's key unless Keep uses it.
func (m *Minting) Purge(_ context.Context, req rotators.RevokeRequest) error {
	return m.change(req, func(id string) { delete(m.keys, id) })
}

// PurgeAfter returns After.
func (m *Minting) PurgeAfter() time.Duration { return m.After }

func (m *Minting) change(req rotators.RevokeRequest, do func(id string)) error {
	id := req.Version.Metadata["key_id"]
	if req.Keep != nil && req.Keep.Metadata["key_id"] == id {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	do(id)
	return nil
}

// Handles returns the IDs of the keys that exist, active or not, sorted.
func (m *Minting) Handles() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.keys))
	for id := range m.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Keys reports how many keys exist and how many of them are active.
func (m *Minting) Keys() (total, active int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		total++
		if k.active {
			active++
		}
	}
	return total, active
}
