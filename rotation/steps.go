package rotation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// Steps binds one secret to its rotator and its store.
type Steps struct {
	SecretID secret.ID
	Rotator  rotators.Rotator
	Store    stores.Store
}

// CreateResult reports the pending version a Create made or found.
type CreateResult struct {
	Version secret.Version
	// Reused is true when the version already existed under the token (a retried step).
	Reused bool
}

// Current returns the version consumers read now, or nil when the secret has none yet.
func (s Steps) Current(ctx context.Context) (*secret.Version, error) {
	v, _, err := s.Store.Read(ctx, s.SecretID, secret.StageCurrent)
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read current version: %w", err)
	}
	return &v, nil
}

// Create makes the version for token: generate material, stage it as pending, then apply
// it to the target. If the token already has a version, its recorded material is applied
// again (the target may have missed it when the previous attempt crashed) and reused.
//
// For a Minter the target makes the material; opts carry what an interrupted earlier
// attempt minted (Abandoned, a hint), where to report a new credential (Minted) and when
// the rotation began (Since). Create adds what the store knows of the secret (Known), so
// the rotator can find from the target's own state what an attempt killed between the
// target's answer and the store write left behind (see rotators.MintRequest). If another
// attempt for the same token staged first, the credential this attempt minted is revoked
// (and purged, where the kind revokes in two steps): nothing but the staged one remains.
func (s Steps) Create(ctx context.Context, token secret.VersionToken, opts ...CreateOption) (CreateResult, error) {
	existing, material, err := s.Store.ReadVersion(ctx, s.SecretID, token)
	switch {
	case err == nil:
		if !existing.Has(secret.StagePending) {
			// Promoted already: a late retry of Create must not touch the target again.
			return CreateResult{Version: existing, Reused: true}, nil
		}
		if err := s.Rotator.Apply(ctx, rotators.ApplyRequest{Version: existing, Material: material}); err != nil {
			return CreateResult{}, fmt.Errorf("apply recorded pending version: %w", err)
		}
		return CreateResult{Version: existing, Reused: true}, nil
	case !errors.Is(err, stores.ErrNotFound):
		return CreateResult{}, fmt.Errorf("look up version: %w", err)
	}

	current, err := s.Current(ctx)
	if err != nil {
		return CreateResult{}, err
	}
	gen, err := s.make(ctx, token, current, opts)
	if err != nil {
		return CreateResult{}, err
	}
	staged, err := s.Store.StagePending(ctx, stores.StageRequest{
		SecretID: s.SecretID, Token: token, Material: gen.Material, Metadata: gen.Metadata,
	})
	if err != nil {
		return CreateResult{}, fmt.Errorf("stage pending version: %w", err)
	}
	// Read back what the store holds: if a concurrent attempt staged first, its material
	// won and is the one the target must get.
	staged, material, err = s.Store.ReadVersion(ctx, s.SecretID, staged.Token)
	if err != nil {
		return CreateResult{}, fmt.Errorf("read back pending version: %w", err)
	}
	if err := s.discardLoser(ctx, token, staged, material, gen); err != nil {
		return CreateResult{}, err
	}
	if err := s.Rotator.Apply(ctx, rotators.ApplyRequest{Version: staged, Material: material}); err != nil {
		return CreateResult{}, fmt.Errorf("apply pending version: %w", err)
	}
	return CreateResult{Version: staged}, nil
}

// CreateOptions are the minting hooks of Create; see rotators.MintRequest.
type CreateOptions struct {
	Abandoned []map[string]string
	Minted    func(metadata map[string]string)
	Since     time.Time
}

// CreateOption sets a CreateOptions field.
type CreateOption func(*CreateOptions)

// WithMintHooks passes what an earlier attempt minted and a callback for what this one
// mints. Generators ignore both.
func WithMintHooks(abandoned []map[string]string, minted func(map[string]string)) CreateOption {
	return func(o *CreateOptions) { o.Abandoned, o.Minted = abandoned, minted }
}

// WithMintSince passes when the rotation began, durably the same for every attempt of its
// Create (the activity's first scheduling time): a credential the target made since then
// that the store does not know is an orphan of this rotation. Generators ignore it.
func WithMintSince(since time.Time) CreateOption {
	return func(o *CreateOptions) { o.Since = since }
}

// known returns the metadata of every version the store keeps for the secret.
func (s Steps) known(ctx context.Context) ([]map[string]string, error) {
	versions, err := s.Store.ListVersions(ctx, s.SecretID)
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	known := make([]map[string]string, 0, len(versions))
	for _, v := range versions {
		if len(v.Metadata) > 0 {
			known = append(known, v.Metadata)
		}
	}
	return known, nil
}

// discardLoser removes the credential this attempt minted when the store holds another
// one under the token (a concurrent attempt staged first): nobody will ever read this
// one's material. A Generator's material never reached the target, so nothing is done.
func (s Steps) discardLoser(ctx context.Context, token secret.VersionToken, staged secret.Version, stored secret.Material, gen rotators.Generated) error {
	if _, ok := s.Rotator.(rotators.Minter); !ok || maps.EqualFunc(stored, gen.Material, secret.Sensitive.Equal) {
		return nil
	}
	lost := secret.Version{SecretID: s.SecretID, Token: token, Number: staged.Number, Metadata: gen.Metadata}
	req := rotators.RevokeRequest{Version: lost, Keep: &staged}
	if err := s.Rotator.Revoke(ctx, req); err != nil {
		return fmt.Errorf("revoke the credential of a concurrent attempt that lost: %w", err)
	}
	if p, ok := s.Rotator.(rotators.Purger); ok {
		if err := p.Purge(ctx, req); err != nil {
			return fmt.Errorf("purge the credential of a concurrent attempt that lost: %w", err)
		}
	}
	return nil
}

// make asks the rotator for the next version's material: generated locally, or minted by
// the target.
func (s Steps) make(ctx context.Context, token secret.VersionToken, current *secret.Version, opts []CreateOption) (rotators.Generated, error) {
	var o CreateOptions
	for _, opt := range opts {
		opt(&o)
	}
	switch r := s.Rotator.(type) {
	case rotators.Generator:
		gen, err := r.Generate(ctx, rotators.GenerateRequest{SecretID: s.SecretID, Token: token, Current: current})
		if err != nil {
			return rotators.Generated{}, fmt.Errorf("generate: %w", err)
		}
		return gen, nil
	case rotators.Minter:
		known, err := s.known(ctx)
		if err != nil {
			return rotators.Generated{}, err
		}
		gen, err := r.Mint(ctx, rotators.MintRequest{
			SecretID: s.SecretID, Token: token, Current: current,
			Abandoned: o.Abandoned, Minted: o.Minted, Known: known, Since: o.Since,
		})
		if err != nil {
			return rotators.Generated{}, fmt.Errorf("mint: %w", err)
		}
		return gen, nil
	}
	return rotators.Generated{}, fmt.Errorf("%w: rotator %T neither generates nor mints material", rotators.ErrInvalidConfig, s.Rotator)
}

// Test proves the version works against the real target, reading its material from the
// store (never from the caller).
func (s Steps) Test(ctx context.Context, token secret.VersionToken) error {
	v, material, err := s.Store.ReadVersion(ctx, s.SecretID, token)
	if err != nil {
		return fmt.Errorf("read version to test: %w", err)
	}
	if err := s.Rotator.Test(ctx, rotators.TestRequest{Version: v, Material: material}); err != nil {
		return fmt.Errorf("test version %d: %w", v.Number, err)
	}
	return nil
}

// PromoteResult reports the promotion.
type PromoteResult struct {
	Current secret.Version
	// Previous is the version that was current before, nil on a secret's first rotation.
	Previous *secret.Version
}

// Promote makes token's version current. Promoting it again reports the same result.
func (s Steps) Promote(ctx context.Context, token secret.VersionToken) (PromoteResult, error) {
	target, _, err := s.Store.ReadVersion(ctx, s.SecretID, token)
	if err != nil {
		return PromoteResult{}, fmt.Errorf("read version to promote: %w", err)
	}
	if target.Has(secret.StageCurrent) && !target.Has(secret.StagePending) {
		return s.promoted(ctx, target)
	}
	// Current and still pending: an earlier attempt stopped between the store's calls
	// (AWS moves AWSCURRENT, then takes AWSPENDING off); promoting again tidies up, so
	// that no pending stage outlives the rotation.
	if err := s.Store.Promote(ctx, s.SecretID, token); err != nil {
		return PromoteResult{}, fmt.Errorf("promote: %w", err)
	}
	target, _, err = s.Store.ReadVersion(ctx, s.SecretID, token)
	if err != nil {
		return PromoteResult{}, fmt.Errorf("read promoted version: %w", err)
	}
	return s.promoted(ctx, target)
}

func (s Steps) promoted(ctx context.Context, current secret.Version) (PromoteResult, error) {
	res := PromoteResult{Current: current}
	prev, _, err := s.Store.Read(ctx, s.SecretID, secret.StagePrevious)
	switch {
	case err == nil:
		res.Previous = &prev
	case !errors.Is(err, stores.ErrNotFound):
		return PromoteResult{}, fmt.Errorf("read previous version: %w", err)
	}
	return res, nil
}

// PurgeAfter reports how long a revoked version stays recoverable before Purge makes the
// revocation final, and false when the kind's Revoke is final already.
func (s Steps) PurgeAfter() (time.Duration, bool) {
	p, ok := s.Rotator.(rotators.Purger)
	if !ok {
		return 0, false
	}
	return p.PurgeAfter(), true
}

// Purge makes the revocation of old final (deletes a deactivated key). For a kind without
// a second step it does nothing.
func (s Steps) Purge(ctx context.Context, old secret.Version, keep *secret.Version) error {
	p, ok := s.Rotator.(rotators.Purger)
	if !ok {
		return nil
	}
	if err := p.Purge(ctx, rotators.RevokeRequest{Version: old, Keep: keep}); err != nil {
		return fmt.Errorf("purge version %d: %w", old.Number, err)
	}
	return nil
}

// Revoke disables old on the target while keep goes on working. Revoking what is already
// revoked is success.
func (s Steps) Revoke(ctx context.Context, old secret.Version, keep *secret.Version) error {
	if err := s.Rotator.Revoke(ctx, rotators.RevokeRequest{Version: old, Keep: keep}); err != nil {
		return fmt.Errorf("revoke version %d: %w", old.Number, err)
	}
	return nil
}
