package vaultkv

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyturn/keyturn/stores"
)

// errAbandoned marks a promotion that could not be completed and was withdrawn, leaving
// the secret as it was before the claim.
var errAbandoned = errors.New("withdrew the promotion")

// finish completes the promotion claimed in st's staging document. Every writer that
// finds a claim runs this, so it is written to be run by several at once: they all write
// the same data with the same check-and-set, and the same ledger entry.
//
//  1. Write the version's data to the consumer path with cas = To-1. If that loses, the
//     write may still be ours (another helper's): it is when KV version To holds exactly
//     the data we meant to write. Anything else there means a writer outside Keyturn
//     changed the path; the claim is withdrawn (ErrConflict).
//  2. Record To in the ledger (custom metadata, merge patch) and prune entries older
//     than previous.
//  3. Clear the claim (and the pending version it promoted) with check-and-set; losing
//     that race means someone else cleared it.
func (s *Store) finish(ctx context.Context, st *state) error {
	in := st.doc.Promote
	want, err := s.intentData(ctx, st)
	if err != nil {
		return err
	}

	landed := false
	if st.kvCurrent == in.To-1 {
		_, err := s.writeData(ctx, st.path, want, in.To-1)
		switch {
		case err == nil:
			landed = true
		case !isCAS(err):
			return err
		}
	}
	if !landed {
		got, version, found, err := s.readData(ctx, st.path, in.To)
		if err != nil {
			return err
		}
		landed = found && version == in.To && sameData(got, want)
	}
	if !landed {
		return s.abandon(ctx, st, "the consumer path was changed by a writer outside keyturn", stores.ErrConflict)
	}

	patch := map[string]any{ledgerKey(in.To): in.Record}
	for n := range st.ledger {
		if n < in.To-1 {
			patch[ledgerKey(n)] = nil
		}
	}
	if err := s.patchCustomMetadata(ctx, st.path, patch); err != nil {
		return err
	}

	doc := st.doc
	doc.Promote = nil
	if doc.Pending != nil && doc.Pending.Token == in.Token {
		doc.Pending = nil
	}
	return ignoreCAS(s.writeStaging(ctx, st, doc))
}

// finishOrDrop finishes a claim found while doing something else. A claim that had to
// be withdrawn is no error for the caller, who simply reads again.
func (s *Store) finishOrDrop(ctx context.Context, st *state) error {
	err := s.finish(ctx, st)
	if errors.Is(err, errAbandoned) {
		return nil
	}
	return err
}

// intentData is the consumer data the claimed promotion writes: the pending version's
// material and metadata, or, for a rollback, a copy of the consumer path's earlier KV
// version.
func (s *Store) intentData(ctx context.Context, st *state) (map[string]any, error) {
	in := st.doc.Promote
	if in.From == fromPending {
		p := st.doc.Pending
		if p == nil || p.Token != in.Token {
			return nil, s.abandon(ctx, st, "its pending version is gone", stores.ErrNotFound)
		}
		rec, err := decodeRecord(p.Record)
		if err != nil {
			return nil, err
		}
		return consumerData(p.Material, rec.Metadata), nil
	}
	n, ok := in.kvSource()
	if !ok {
		return nil, s.abandon(ctx, st, "the claim names no source", stores.ErrNotFound)
	}
	data, _, found, err := s.readData(ctx, st.path, n)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, s.abandon(ctx, st, fmt.Sprintf("KV version %d it copies was deleted", n), stores.ErrNotFound)
	}
	return data, nil
}

// abandon withdraws the claim and returns an error wrapping errAbandoned and kind.
// Losing the check-and-set means another writer already cleared or replaced it.
func (s *Store) abandon(ctx context.Context, st *state, why string, kind error) error {
	in := st.doc.Promote
	doc := st.doc
	doc.Promote = nil
	if err := ignoreCAS(s.writeStaging(ctx, st, doc)); err != nil {
		return err
	}
	return fmt.Errorf("%w of %q to KV version %d: %s: %w", errAbandoned, in.Token, in.To, why, kind)
}
