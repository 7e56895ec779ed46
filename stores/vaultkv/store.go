package vaultkv

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// maxAttempts bounds how often one call re-reads and tries again after losing a
// check-and-set to another writer of the same secret.
const maxAttempts = 12

// StagePending implements stores.Store. The pending version goes to the staging path;
// the consumer path is not touched.
func (s *Store) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	if err := s.checkStage(req); err != nil {
		return secret.Version{}, fmt.Errorf("stage pending: %w", err)
	}
	var out secret.Version
	err := s.write(ctx, req.SecretID, func(st *state, entries []entry) (bool, error) {
		if e, ok := find(entries, byToken(req.Token)); ok {
			// A retried create: hand back what the first attempt recorded.
			out = e.rec.version(req.SecretID, e.stage)
			return true, nil
		}
		if st.stagingVersion == 0 {
			// Vault keeps one version of the staging path, so a superseded or promoted
			// pending version's material does not linger there.
			if err := s.limitVersions(ctx, st.staging, 1); err != nil {
				return false, err
			}
		}
		rec := record{
			Token:    req.Token,
			Number:   st.stagingVersion + 1, // the staging path's next KV version: never reused
			Created:  s.now().UnixMilli(),
			Metadata: maps.Clone(req.Metadata),
		}
		raw, err := rec.encode()
		if err != nil {
			return false, err
		}
		doc := stagingDoc{Pending: &pendingEntry{Token: req.Token, Record: raw, Material: reveal(req.Material)}}
		if err := s.writeStaging(ctx, st, doc); err != nil {
			return false, ignoreCAS(err)
		}
		out = rec.version(req.SecretID, secret.StagePending)
		return true, nil
	})
	if err != nil {
		return secret.Version{}, fmt.Errorf("stage pending %s: %w", req.SecretID, err)
	}
	return out, nil
}

// Read implements stores.Store.
func (s *Store) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	if !stage.Valid() {
		return secret.Version{}, nil, fmt.Errorf("read %s: unknown stage %q", id, stage)
	}
	return s.readWhere(ctx, id, "read", func(e entry) bool { return e.stage == stage }, fmt.Sprintf("no %s version", stage))
}

// ReadVersion implements stores.Store.
func (s *Store) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	return s.readWhere(ctx, id, "read version", byToken(token), fmt.Sprintf("version %q", token))
}

func (s *Store) readWhere(ctx context.Context, id secret.ID, op string, pred func(entry) bool, missing string) (secret.Version, secret.Material, error) {
	if err := s.checkID(id); err != nil {
		return secret.Version{}, nil, fmt.Errorf("%s: %w", op, err)
	}
	st, err := s.load(ctx, id)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	entries, err := st.view()
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	e, ok := find(entries, pred)
	if !ok {
		return secret.Version{}, nil, fmt.Errorf("%s %s: %s: %w", op, id, missing, stores.ErrNotFound)
	}
	m, err := s.material(ctx, st, e)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return e.rec.version(id, e.stage), m, nil
}

// material fetches a version's material: a pending one from the staging document, a
// current or previous one from its KV version of the consumer path.
func (s *Store) material(ctx context.Context, st *state, e entry) (secret.Material, error) {
	if e.stage == secret.StagePending {
		m := secret.Material{}
		for k, v := range st.doc.Pending.Material {
			m[k] = secret.NewSensitive(v)
		}
		return m, nil
	}
	data, _, found, err := s.readData(ctx, st.path, e.kv)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("KV version %d of %s was deleted in Vault (undelete it to read it): %w", e.kv, s.dataPath(st.path), stores.ErrNotFound)
	}
	return splitConsumerData(data, e.rec.Metadata), nil
}

// Promote implements stores.Store. It claims the promotion in the staging document,
// writes the material to the consumer path with check-and-set, records the new KV
// version in the ledger and clears the claim; see the package doc.
func (s *Store) Promote(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	if err := s.checkID(id); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	err := s.write(ctx, id, func(st *state, entries []entry) (bool, error) {
		e, ok := find(entries, byToken(token))
		if !ok {
			return false, fmt.Errorf("version %q: %w", token, stores.ErrNotFound)
		}
		if e.stage == secret.StageCurrent {
			return true, nil
		}
		in := &promoteIntent{Token: token, To: st.kvCurrent + 1, From: fromPending, Record: e.raw}
		if e.stage == secret.StagePrevious {
			in.From = fromKV(e.kv)
		}
		doc := st.doc
		doc.Promote = in
		if err := s.writeStaging(ctx, st, doc); err != nil {
			return false, ignoreCAS(err)
		}
		return true, s.finish(ctx, st)
	})
	if err != nil {
		return fmt.Errorf("promote %s: %w", id, err)
	}
	return nil
}

// DiscardPending implements stores.Store.
func (s *Store) DiscardPending(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	if err := s.checkID(id); err != nil {
		return fmt.Errorf("discard pending: %w", err)
	}
	err := s.write(ctx, id, func(st *state, entries []entry) (bool, error) {
		e, ok := find(entries, byToken(token))
		if !ok {
			return true, nil // already gone
		}
		if e.stage != secret.StagePending {
			return false, fmt.Errorf("version %q is %s: %w", token, e.stage, stores.ErrNotPending)
		}
		doc := st.doc
		doc.Pending = nil
		return true, ignoreCAS(s.writeStaging(ctx, st, doc))
	})
	if err != nil {
		return fmt.Errorf("discard pending %s: %w", id, err)
	}
	return nil
}

// ListVersions implements stores.Store. Only versions that hold a stage are listed:
// older KV versions of the consumer path are Vault's history, not Keyturn versions.
func (s *Store) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	if err := s.checkID(id); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	st, err := s.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", id, err)
	}
	entries, err := st.view()
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", id, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("list versions %s: %w", id, stores.ErrNotFound)
	}
	out := make([]secret.Version, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.rec.version(id, e.stage))
	}
	return out, nil
}

// load reads the staging document, then the consumer path's metadata.
func (s *Store) load(ctx context.Context, id secret.ID) (*state, error) {
	st := &state{id: id, path: s.consumerPath(id), ledger: map[int]string{}}
	st.staging = s.staging + "/" + st.path

	data, version, found, err := s.readData(ctx, st.staging, 0)
	if err != nil {
		return nil, err
	}
	st.stagingVersion = version
	if found {
		if st.doc, err = stagingFromData(data); err != nil {
			return nil, fmt.Errorf("%s: %w", s.dataPath(st.staging), err)
		}
	}

	md, err := s.readMetadata(ctx, st.path)
	if err != nil {
		return nil, err
	}
	if md != nil {
		st.kvCurrent = md.current
		st.kvVersions = md.versions
		st.ledger = parseLedger(md.custom)
	}
	return st, nil
}

// writeStaging replaces the staging document with check-and-set against the version
// st was read at, and updates st to match.
func (s *Store) writeStaging(ctx context.Context, st *state, doc stagingDoc) error {
	data, err := doc.toData()
	if err != nil {
		return err
	}
	v, err := s.writeData(ctx, st.staging, data, st.stagingVersion)
	if err != nil {
		return err
	}
	st.doc, st.stagingVersion = doc, v
	return nil
}

// write runs change against a settled view of the secret: a promotion claim found in
// flight (maybe this very call's, claimed by a racing one, or one a crash left) is
// finished or dropped first and the round looked at again. Rounds lost to other writers
// are retried, boundedly.
func (s *Store) write(ctx context.Context, id secret.ID, change func(st *state, entries []entry) (done bool, err error)) error {
	return s.retry(ctx, func() (bool, error) {
		st, err := s.load(ctx, id)
		if err != nil {
			return false, err
		}
		if st.doc.Promote != nil {
			return false, s.finishOrDrop(ctx, st)
		}
		entries, err := st.view()
		if err != nil {
			return false, err
		}
		return change(st, entries)
	})
}

// retry runs step until it reports done, an error, or maxAttempts rounds lost to other
// writers. Rounds after the first wait a little, with jitter, so racers spread out.
func (s *Store) retry(ctx context.Context, step func() (done bool, err error)) error {
	for attempt := range maxAttempts {
		if attempt > 0 {
			pause := time.Duration(rand.Int64N(int64(attempt)*int64(10*time.Millisecond) + 1))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		done, err := step()
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("lost %d rounds to other writers: %w", maxAttempts, stores.ErrConflict)
}

// ignoreCAS turns a lost check-and-set into "try again" (nil with done false).
func ignoreCAS(err error) error {
	if isCAS(err) {
		return nil
	}
	return err
}

func byToken(token secret.VersionToken) func(entry) bool {
	return func(e entry) bool { return e.rec.Token == token }
}

// consumerPath is where consumers read id, under the mount.
func (s *Store) consumerPath(id secret.ID) string {
	if p, ok := s.paths[id]; ok {
		return strings.Trim(p, "/")
	}
	return string(id)
}

// checkID refuses an invalid ID, and one whose consumer path would fall under the
// staging prefix, where pending material lives.
func (s *Store) checkID(id secret.ID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if p := s.consumerPath(id); p == s.staging || strings.HasPrefix(p, s.staging+"/") {
		return fmt.Errorf("secret %s would live under the staging prefix %s/: choose another path or StagingPrefix", id, s.staging)
	}
	return nil
}

// checkStage validates a stage request before anything is read or written.
func (s *Store) checkStage(req stores.StageRequest) error {
	if err := s.checkID(req.SecretID); err != nil {
		return err
	}
	if err := req.Token.Validate(); err != nil {
		return err
	}
	if len(req.Material) == 0 {
		return fmt.Errorf("version %q of %s has no material", req.Token, req.SecretID)
	}
	for field := range req.Material {
		if field == "" {
			return fmt.Errorf("version %q has a material field with an empty name", req.Token)
		}
		if _, clash := req.Metadata[field]; clash {
			return fmt.Errorf("version %q has %q both as material and as metadata: consumers read both from one path", req.Token, field)
		}
	}
	if err := stores.CheckConsumerMetadata(req.Metadata); err != nil {
		return fmt.Errorf("version %q of %s: %w", req.Token, req.SecretID, err)
	}
	// The ledger keeps token and metadata in one custom-metadata value; refuse now what
	// Vault would refuse at promote time.
	worst := record{Token: req.Token, Number: 1 << 31, Created: 1 << 42, Metadata: req.Metadata}
	raw, err := worst.encode()
	if err != nil {
		return err
	}
	if len(raw) > maxCustomMetadataValue {
		return fmt.Errorf("version %q: token and metadata take %d bytes, over Vault's %d-byte custom metadata limit: shorten them", req.Token, len(raw), maxCustomMetadataValue)
	}
	return nil
}

// reveal copies material into plain strings for a write to Vault.
func reveal(m secret.Material) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Reveal()
	}
	return out
}
