package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// RollbackResult says what a rollback found and did, in words an operator can act on.
type RollbackResult struct {
	// Failed is the version the rollback undid, as it knew it (from the store, or from its
	// caller); nil when nothing was known of it. A caller that runs the rollback again
	// passes it back, since the store stops naming it once its pending stage is gone.
	Failed *secret.Version `json:"failed,omitempty"`
	// Restored is the version consumers read after the rollback, nil if the secret had none.
	Restored *secret.Version `json:"restored,omitempty"`
	// RestoredVerified is true when Restored was tested against the target and logs in.
	RestoredVerified bool `json:"restoredVerified,omitempty"`
	// Repromoted is true when the failed version had become current and the restored
	// version was made current again.
	Repromoted bool `json:"repromoted,omitempty"`
	// Reapplied is true when the restored version no longer worked and was applied again.
	Reapplied bool `json:"reapplied,omitempty"`
	// Discarded is true when the failed version's pending stage was removed.
	Discarded bool `json:"discarded,omitempty"`
	// Revoked is true when the failed version was revoked on the target.
	Revoked bool `json:"revoked,omitempty"`
	// Purged is true when that revocation was also made final (a deactivated key deleted).
	Purged bool `json:"purged,omitempty"`
	// KeptFailed is true when the failed version had become current and the secret had no
	// earlier version to go back to: it stays current, since revoking it would leave
	// consumers nothing.
	KeptFailed bool `json:"keptFailed,omitempty"`
	// Swept holds the handles (a key ID, a serial; never material) of the credentials the
	// target made for the failed version that the store never got, which this rollback
	// removed: Create gave up after the target minted (see rotators.Sweeper).
	Swept []map[string]string `json:"swept,omitempty"`
	// RevokeError is set when the failed version could not be revoked on the target, or
	// what its Create left there could not be swept (after the kept version was
	// verified): the rollback is otherwise done, and running it again retries the revoke
	// or the sweep. It holds no material.
	RevokeError string `json:"revokeError,omitempty"`
}

// RollbackOption sets a rollbackOptions field.
type RollbackOption func(*rollbackOptions)

type rollbackOptions struct {
	since, until time.Time
}

// WithSweepSince passes when the rotation's Create step began, for the sweep of what a
// Create that gave up left on the target (rotators.MintRequest.Since). Without it a kind
// that finds such credentials by age (awsiam, vaultpki) finds none.
func WithSweepSince(since time.Time) RollbackOption {
	return func(o *rollbackOptions) { o.since = since }
}

// WithSweepUntil bounds the sweep's window from above (rotators.MintRequest.Until): when
// the Create step ended, plus a margin.
func WithSweepUntil(until time.Time) RollbackOption {
	return func(o *rollbackOptions) { o.until = until }
}

// Kept says, in words an operator can act on, what consumers read after the rollback.
func (r RollbackResult) Kept() string {
	switch {
	case r.KeptFailed:
		return "the secret had no earlier version to go back to, so the new version stays current"
	case r.Restored == nil:
		return "the secret had no current version; the new one was revoked and discarded"
	case r.RestoredVerified:
		return fmt.Sprintf("version %d is current and was verified to work", r.Restored.Number)
	}
	return fmt.Sprintf("version %d is current but was not verified to work", r.Restored.Number)
}

// testLogin tests a version and counts a failed check as a working login.
func (s Steps) testLogin(ctx context.Context, v secret.Version, m secret.Material) error {
	err := s.Rotator.Test(ctx, rotators.TestRequest{Version: v, Material: m})
	if errors.Is(err, rotators.ErrCheckFailed) {
		return nil
	}
	return err
}

// ErrRestoreFailed means the rollback could not make the version to keep work again. It is
// the one outcome that needs a human at once; the message says which version.
var ErrRestoreFailed = errors.New("restored version does not work against the target")

// Inspect returns the version the store holds under token, or nil. A rollback records it
// before changing anything, so a retried rollback still knows what to revoke after the
// pending stage is gone.
func (s Steps) Inspect(ctx context.Context, token secret.VersionToken) (*secret.Version, error) {
	v, _, err := s.Store.ReadVersion(ctx, s.SecretID, token)
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read failed version: %w", err)
	}
	return &v, nil
}

// Rollback undoes a rotation whose new version (token) failed or was aborted, so that
// restore (the version that was current when the rotation began; nil on a first rotation)
// is current and works. failed is what the caller knows of the new version (Create's
// result, or an earlier Inspect); nil when nothing is known. It decides from observed
// state, so it is safe to run at any point of a rotation, and again:
//
//  1. If the new version became current, restore is promoted back. With no restore, the
//     new version stays current (KeptFailed): it is the only one there is.
//  2. A new version still pending is discarded first, so no pending stage outlives the
//     rotation even if the target cannot be reached to revoke it.
//  3. The new version is revoked on the target, keeping restore. If the store never
//     got it (Create gave up, perhaps after the target minted), a rotators.Sweeper is
//     asked to remove what a Mint for token left there instead (Swept; opts give it the
//     time the Create began). If the target refuses (it is down, the admin credential
//     is wrong), the rollback goes on: what consumers read matters first, and
//     RevokeError says what is left; running Rollback again retries it.
//  4. Restore is tested; only if the target refuses it (one role, new password already
//     set) is its recorded material applied again, and tested once more. Nothing is said
//     about the kept version before this test.
func (s Steps) Rollback(ctx context.Context, token secret.VersionToken, failed, restore *secret.Version, opts ...RollbackOption) (RollbackResult, error) {
	var o rollbackOptions
	for _, opt := range opts {
		opt(&o)
	}
	var res RollbackResult
	observed, err := s.Inspect(ctx, token)
	if err != nil {
		return res, err
	}
	if observed != nil {
		failed = observed
	}
	res.Failed = failed

	// Step 1. Labels first: consumers must read the working credential again at once.
	if observed != nil && observed.Has(secret.StageCurrent) {
		if restore == nil {
			res.KeptFailed = true
			return res, nil
		}
		if err := s.Store.Promote(ctx, s.SecretID, restore.Token); err != nil {
			return res, fmt.Errorf("re-promote version %d: %w", restore.Number, err)
		}
		res.Repromoted = true
	}

	// Step 2. No pending stage may outlive its rotation.
	if observed != nil && observed.Has(secret.StagePending) {
		if err := s.Store.DiscardPending(ctx, s.SecretID, token); err != nil {
			return res, fmt.Errorf("discard failed version %d: %w", observed.Number, err)
		}
		res.Discarded = true
	}

	// Step 3. The new credential must stop working. Unknown means Create never staged
	// it: a Generator's material never reached the target, but a Minter's target may
	// have made a credential that only the target itself can now name.
	var revokeErr error
	if failed != nil {
		revokeErr = s.revokeFailed(ctx, *failed, restore, &res)
	} else {
		revokeErr = s.sweep(ctx, token, restore, o, &res)
	}

	// Step 4. Prove the kept credential still logs in; repair it only if the target
	// refuses it. A failed check query is not a refusal: the kept credential has the same
	// privileges it had before the rotation, so re-applying it would change nothing.
	if restore != nil {
		kept, material, err := s.Store.ReadVersion(ctx, s.SecretID, restore.Token)
		if err != nil {
			return res, fmt.Errorf("read version %d to restore: %w", restore.Number, err)
		}
		res.Restored = &kept
		err = s.testLogin(ctx, kept, material)
		if errors.Is(err, rotators.ErrCredentialRejected) {
			if err := s.Rotator.Apply(ctx, rotators.ApplyRequest{Version: kept, Material: material}); err != nil {
				return res, fmt.Errorf("re-apply version %d: %w", kept.Number, err)
			}
			res.Reapplied = true
			err = s.testLogin(ctx, kept, material)
			if errors.Is(err, rotators.ErrCredentialRejected) {
				return res, fmt.Errorf("version %d: %w: %w", kept.Number, ErrRestoreFailed, err)
			}
		}
		if err != nil {
			return res, errors.Join(fmt.Errorf("test version %d to restore: %w", kept.Number, err), revokeErr)
		}
		res.RestoredVerified = true
	}
	if revokeErr != nil {
		if restore == nil {
			// Nothing was verified to report instead: the revoke is the rollback.
			return res, revokeErr
		}
		res.RevokeError = revokeErr.Error()
	}
	return res, nil
}

// revokeFailed revokes the failed version on the target, keeping restore, and makes the
// revocation final where the kind has a second step: a failed version is nobody's to
// recover, and a deactivated IAM key would otherwise hold the user's second key slot.
func (s Steps) revokeFailed(ctx context.Context, failed secret.Version, restore *secret.Version, res *RollbackResult) error {
	req := rotators.RevokeRequest{Version: failed, Keep: restore}
	if err := s.Rotator.Revoke(ctx, req); err != nil {
		return fmt.Errorf("revoke failed version %d: %w", failed.Number, err)
	}
	res.Revoked = true
	if p, ok := s.Rotator.(rotators.Purger); ok && !res.KeptFailed {
		if err := p.Purge(ctx, req); err != nil {
			return fmt.Errorf("purge failed version %d: %w", failed.Number, err)
		}
		res.Purged = true
	}
	return nil
}

// sweep removes what a Create that gave up left on the target: a credential minted for
// token that the store never staged, so no version names it. It asks the rotator, if it
// is a rotators.Sweeper, to run the search Mint runs before minting, with what the store
// knows now; other rotators have nothing to sweep.
func (s Steps) sweep(ctx context.Context, token secret.VersionToken, restore *secret.Version, o rollbackOptions, res *RollbackResult) error {
	sw, ok := s.Rotator.(rotators.Sweeper)
	if !ok {
		return nil
	}
	known, err := s.known(ctx)
	if err != nil {
		return fmt.Errorf("sweep what the failed create left: %w", err)
	}
	removed, err := sw.Sweep(ctx, rotators.MintRequest{
		SecretID: s.SecretID, Token: token, Current: restore, Known: known, Since: o.since, Until: o.until,
	})
	res.Swept = append(res.Swept, removed...)
	if err != nil {
		return fmt.Errorf("sweep what the failed create left: %w", err)
	}
	return nil
}
