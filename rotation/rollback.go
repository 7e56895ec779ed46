package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// RollbackResult says what a rollback found and did, in words an operator can act on.
type RollbackResult struct {
	// Restored is the version consumers read after the rollback, nil if the secret had none.
	Restored *secret.Version
	// RestoredVerified is true when Restored was tested against the target and logs in.
	RestoredVerified bool
	// Repromoted is true when the failed version had become current and the restored
	// version was made current again.
	Repromoted bool
	// Reapplied is true when the restored version no longer worked and was applied again.
	Reapplied bool
	// Discarded is true when the failed version's pending stage was removed.
	Discarded bool
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

// Rollback undoes a rotation whose new version (token) failed or was aborted, so that
// restore (the version that was current when the rotation began; nil on a first rotation)
// is current and works. It decides from observed state, so it is safe to run at any point
// of a rotation, and again:
//
//  1. If the failed version became current, restore is promoted back.
//  2. The failed version is revoked on the target, keeping restore.
//  3. Restore is tested; only if it no longer logs in (one role, new password already set)
//     is its recorded material applied again, and tested once more.
//  4. A failed version still pending is discarded, so no pending stage is left behind.
func (s Steps) Rollback(ctx context.Context, token secret.VersionToken, restore *secret.Version) (RollbackResult, error) {
	var res RollbackResult
	failed, _, err := s.Store.ReadVersion(ctx, s.SecretID, token)
	found := err == nil
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		return res, fmt.Errorf("read failed version: %w", err)
	}

	// Step 1. Labels first: consumers must read the working credential again as soon as possible.
	if found && failed.Has(secret.StageCurrent) && restore != nil {
		if err := s.Store.Promote(ctx, s.SecretID, restore.Token); err != nil {
			return res, fmt.Errorf("re-promote version %d: %w", restore.Number, err)
		}
		res.Repromoted = true
	}

	// Step 2. The failed credential must stop working. Without the version in the store
	// (Create failed before staging) nothing reached the target.
	if found {
		if err := s.Rotator.Revoke(ctx, rotators.RevokeRequest{Version: failed, Keep: restore}); err != nil {
			return res, fmt.Errorf("revoke failed version %d: %w", failed.Number, err)
		}
	}

	// Step 3. Prove the kept credential still logs in; repair it only if the target
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
			return res, fmt.Errorf("test version %d to restore: %w", kept.Number, err)
		}
		res.RestoredVerified = true
	}

	// Step 4. No pending stage may outlive its rotation.
	if found && failed.Has(secret.StagePending) {
		if err := s.Store.DiscardPending(ctx, s.SecretID, token); err != nil {
			return res, fmt.Errorf("discard failed version %d: %w", failed.Number, err)
		}
		res.Discarded = true
	}
	return res, nil
}
