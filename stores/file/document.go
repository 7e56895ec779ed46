package file

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// formatVersion is the on-disk format this package writes and reads. Bump it when a
// change would make an older Keyturn misread a newer file. Format 1 authenticated only
// each version's material; format 2 adds a MAC over the whole document. Open upgrades
// format 1 stores once (migrate.go).
const (
	formatVersion = 2
	formatLegacy  = 1
)

// document is one secret's file: every version the store keeps for it.
type document struct {
	Format   int       `json:"format"`
	SecretID secret.ID `json:"secret_id"`
	// NextNumber is the number the next staged version gets. It is kept rather than
	// derived from the versions because versions are deleted, and numbers are never reused.
	NextNumber int       `json:"next_number"`
	Versions   []*record `json:"versions"`
	// KeyID names the store key whose derived MAC key signed the document, and MAC
	// authenticates every field above and every version's fields (auth.go): stages,
	// numbers and metadata cannot be swapped or edited without the key.
	KeyID string `json:"key_id,omitempty"`
	MAC   []byte `json:"mac,omitempty"`
}

// record is one version. Only Nonce and Ciphertext relate to material; everything else
// is the same non-secret reference data secret.Version carries.
type record struct {
	Token      secret.VersionToken `json:"token"`
	Number     int                 `json:"number"`
	Stages     []secret.Stage      `json:"stages"`
	CreatedAt  time.Time           `json:"created_at"`
	Metadata   map[string]string   `json:"metadata,omitempty"`
	KeyID      string              `json:"key_id"`
	Nonce      []byte              `json:"nonce"`
	Ciphertext []byte              `json:"ciphertext"`
}

func newDocument(id secret.ID) *document {
	return &document{Format: formatVersion, SecretID: id, NextNumber: 1}
}

// check rejects a document this package did not write for id, rather than acting on it.
// It checks the shape only, and lets both formats through: the caller decides whether a
// format 1 document is welcome (only while migrating), and the store verifies the MAC.
func (d *document) check(id secret.ID) error {
	if d.Format != formatVersion && d.Format != formatLegacy {
		return fmt.Errorf("unsupported file format %d (this Keyturn reads %d)", d.Format, formatVersion)
	}
	if d.SecretID != id {
		return fmt.Errorf("file holds secret %q, not %q", d.SecretID, id)
	}
	for _, r := range d.Versions {
		if r == nil {
			return fmt.Errorf("file holds an empty version")
		}
		for _, st := range r.Stages {
			if !st.Valid() {
				return fmt.Errorf("version %q holds unknown stage %q", r.Token, st)
			}
		}
	}
	return nil
}

func (d *document) find(token secret.VersionToken) *record {
	for _, r := range d.Versions {
		if r.Token == token {
			return r
		}
	}
	return nil
}

// holder returns the version holding stage. The transitions below keep each stage on at
// most one version, so the first match is the only one.
func (d *document) holder(stage secret.Stage) *record {
	for _, r := range d.Versions {
		if r.has(stage) {
			return r
		}
	}
	return nil
}

// stage adds r as the pending version. Any other version loses the pending stage so the
// label never sticks to an abandoned attempt.
func (d *document) stage(r *record) {
	for _, other := range d.Versions {
		other.drop(secret.StagePending)
	}
	r.Stages = []secret.Stage{secret.StagePending}
	d.Versions = append(d.Versions, r)
	d.prune()
}

// promote makes token's version current and the former current previous; the former
// previous loses its stage. It reports whether anything changed.
func (d *document) promote(token secret.VersionToken) (bool, error) {
	target := d.find(token)
	if target == nil {
		return false, fmt.Errorf("version %q: %w", token, stores.ErrNotFound)
	}
	if target.has(secret.StageCurrent) {
		return false, nil
	}
	for _, r := range d.Versions {
		if r != target {
			r.drop(secret.StagePrevious)
		}
	}
	if old := d.holder(secret.StageCurrent); old != nil {
		old.drop(secret.StageCurrent)
		old.add(secret.StagePrevious)
	}
	target.drop(secret.StagePending)
	target.drop(secret.StagePrevious)
	target.add(secret.StageCurrent)
	d.prune()
	return true, nil
}

// discard removes a pending version. An unknown token is success: a retried discard
// finds its work already done.
func (d *document) discard(token secret.VersionToken) (bool, error) {
	r := d.find(token)
	if r == nil {
		return false, nil
	}
	if r.has(secret.StageCurrent) || r.has(secret.StagePrevious) {
		return false, fmt.Errorf("version %q holds %v: %w", token, r.Stages, stores.ErrNotPending)
	}
	r.drop(secret.StagePending)
	d.prune()
	return true, nil
}

// prune deletes versions that hold no stage: nobody may read them again, so keeping
// their material would only widen what a stolen disk gives away.
func (d *document) prune() {
	d.Versions = slices.DeleteFunc(d.Versions, func(r *record) bool { return len(r.Stages) == 0 })
}

// sorted returns the versions oldest first.
func (d *document) sorted() []*record {
	out := slices.Clone(d.Versions)
	slices.SortFunc(out, func(a, b *record) int { return a.Number - b.Number })
	return out
}

func (r *record) has(stage secret.Stage) bool { return slices.Contains(r.Stages, stage) }

func (r *record) add(stage secret.Stage) {
	if !r.has(stage) {
		r.Stages = append(r.Stages, stage)
	}
}

func (r *record) drop(stage secret.Stage) {
	r.Stages = slices.DeleteFunc(r.Stages, func(s secret.Stage) bool { return s == stage })
}

// version describes r with copies of its slices and maps, so callers cannot change the
// store's state through what it returns.
func (r *record) version(id secret.ID) secret.Version {
	v := secret.Version{
		SecretID:  id,
		Token:     r.Token,
		Number:    r.Number,
		Stages:    slices.Clone(r.Stages),
		CreatedAt: r.CreatedAt,
	}
	if len(r.Metadata) > 0 {
		v.Metadata = maps.Clone(r.Metadata)
	}
	return v
}
