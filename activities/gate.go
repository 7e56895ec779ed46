package activities

import (
	"context"
	"time"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// RevokeGate is a secret's revoke gate as the workflow applies it: after the grace period,
// wait until the target shows the previous version unused, checking every Poll, for at
// most MaxWait; then revoke anyway, or, with Hold, keep waiting and alert. The plan
// carries it (from the inventory through the Binding), never the workflow's input, so a
// rotation started by hand, by a schedule or by a retry applies the same policy.
type RevokeGate struct {
	MaxWait time.Duration `json:"maxWait"`
	Poll    time.Duration `json:"poll"`
	// Hold: when MaxWait has passed with the version still in use, hold the revoke
	// (keep checking, notify revoke_held) instead of revoking anyway.
	Hold bool `json:"hold,omitempty"`
}

// CheckUsageInput names the version the gate asks about.
type CheckUsageInput struct {
	SecretID secret.ID `json:"secretId"`
	// Version is the previous version, about to be revoked.
	Version secret.Version `json:"version"`
	// Keep is the version that replaced it (never counted as a use of Version).
	Keep *secret.Version `json:"keep,omitempty"`
	// Since is when Keep was promoted: earlier uses are no sign that a consumer has not
	// moved.
	Since time.Time `json:"since"`
}

// CheckUsageResult is what the target showed: callers named by handles (users,
// application names, client addresses, times), never material.
type CheckUsageResult struct {
	rotators.Usage
	// Unsupported: the secret's kind cannot tell whether a version is in use (the
	// inventory changed under a running rotation, say); the gate then stops waiting.
	Unsupported bool `json:"unsupported,omitempty"`
}

// CheckUsage asks the target whether the previous version is still in use. It only reads
// the target, so the gate calls it at every poll, and it leaves no audit record (the
// gate's decision does: the revoke, or the operator's signal).
func (a *Activities) CheckUsage(ctx context.Context, in CheckUsageInput) (CheckUsageResult, error) {
	return run(ctx, a, stepRef{secretID: in.SecretID, readOnly: true}, func(ctx context.Context, s rotation.Steps, _ *beat) (CheckUsageResult, error) {
		usage, supported, err := s.InUse(ctx, in.Version, in.Keep, in.Since)
		return CheckUsageResult{Usage: usage, Unsupported: !supported}, err
	})
}
