package vaultkv

import (
	"context"
	"fmt"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// ReadCurrent returns the current version of a secret and its material reading only the
// consumer path: M/metadata/P (the KV current version and the ledger) and one KV
// version of M/data/P. It never reads the staging prefix, so it works with a consumer's
// policy that grants read on the consumer paths alone, and it can never return pending
// material. Applications read through it (package consumer); the worker uses Read.
//
// The one moment it answers differently from Read is inside a promotion, between its
// write to the consumer path (KV version C) and its ledger entry for C, a few
// milliseconds normally, or until the next call of the store's writers when a worker
// crashed right there. Read learns from the staging document's claim that C is the new
// version; ReadCurrent cannot see the claim, so it serves C-1, the version that was
// current when the promotion began, when the ledger describes it. That version works:
// the rotation revokes the old credential only after the promotion has finished and the
// grace period has passed, and a consumer reading after that sees C with its ledger
// entry. A version written to the consumer path outside Keyturn looks the same (no
// ledger entry), and is treated the same: ReadCurrent keeps serving the last version
// Keyturn wrote, where Read reports no current version. When neither C nor C-1 is a
// version Keyturn recorded, the secret has no current version (stores.ErrNotFound).
func (s *Store) ReadCurrent(ctx context.Context, id secret.ID) (secret.Version, secret.Material, error) {
	if err := s.checkID(id); err != nil {
		return secret.Version{}, nil, fmt.Errorf("read current: %w", err)
	}
	path := s.consumerPath(id)
	md, err := s.readMetadata(ctx, path)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read current %s: %w", id, err)
	}
	if md == nil {
		return secret.Version{}, nil, fmt.Errorf("read current %s: nothing at %s: %w", id, s.dataPath(path), stores.ErrNotFound)
	}
	st := &state{kvCurrent: md.current, kvVersions: md.versions, ledger: parseLedger(md.custom)}
	kv, rec, err := st.currentRecorded()
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read current %s: %w", id, err)
	}
	if kv == 0 {
		return secret.Version{}, nil, fmt.Errorf("read current %s: no current version keyturn recorded at %s: %w", id, s.dataPath(path), stores.ErrNotFound)
	}
	// KV versions never change once written, so the metadata read above and this data
	// read agree even if a promotion lands in between.
	data, _, found, err := s.readData(ctx, path, kv)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read current %s: %w", id, err)
	}
	if !found {
		return secret.Version{}, nil, fmt.Errorf("read current %s: KV version %d of %s was deleted in Vault (undelete it to read it): %w", id, kv, s.dataPath(path), stores.ErrNotFound)
	}
	return rec.version(id, secret.StageCurrent), splitConsumerData(data, rec.Metadata), nil
}

// currentRecorded picks the KV version ReadCurrent serves: the current one when the
// ledger describes it, else (a promotion between its data write and its ledger entry)
// the one before, when the ledger describes that. kv is 0 when there is neither.
func (st *state) currentRecorded() (kv int, rec record, err error) {
	for _, n := range []int{st.kvCurrent, st.kvCurrent - 1} {
		if n < 1 || !st.live(n) {
			// A deleted current is no promotion under way: Read reports no current
			// either, and serving the version before it would undo the deletion.
			return 0, record{}, nil
		}
		if raw := st.ledger[n]; raw != "" {
			rec, err := decodeRecord(raw)
			if err != nil {
				return 0, record{}, fmt.Errorf("ledger entry for KV version %d: %w", n, err)
			}
			return n, rec, nil
		}
	}
	return 0, record{}, nil
}
