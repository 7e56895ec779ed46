package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// ContainResult says which versions a containment revoked.
type ContainResult struct {
	// Revoked lists the version numbers revoked on the target, current first.
	Revoked []int `json:"revoked,omitempty"`
	// Discarded is true when a pending version was removed from the store.
	Discarded bool `json:"discarded,omitempty"`
	// Ended lists the uses the target showed of the contained versions just before they
	// were revoked with their sessions ended: who the containment cut off (handles only).
	// Empty for kinds that cannot tell (rotators.UsageReporter).
	Ended []rotators.Use `json:"ended,omitempty"`
	// EndedUnknown says why the uses could not be listed; containment went on regardless.
	EndedUnknown string `json:"endedUnknown,omitempty"`
}

// Contain revokes every version of the secret that may still work on the target, the
// current one included, ends their sessions and, for kinds with a second step, purges
// them: the response to a credential that may have leaked. Consumers lose access until a
// new version is promoted; that is the point. A pending version (from a rotation the
// incident superseded) is revoked and discarded. Revoking is idempotent, so Contain can
// run again.
//
// It is PrepareContain, ListUses, a Revoke of each version, and FinishContain; an incident
// that contains many secrets at once calls the parts itself, to revoke the versions of
// every secret on one target together (rotators.GroupRevoker), which report the sessions
// they ended instead of ListUses.
func (s Steps) Contain(ctx context.Context) (ContainResult, error) {
	c, err := s.PrepareContain(ctx)
	if err != nil {
		return c.Result, err
	}
	s.ListUses(ctx, &c)
	for _, v := range c.Versions {
		if err := s.Rotator.Revoke(ctx, v.Request()); err != nil {
			return c.Result, fmt.Errorf("contain: revoke %s version %d: %w", v.Stage, v.Version.Number, err)
		}
		c.Result.Revoked = append(c.Result.Revoked, v.Version.Number)
	}
	return s.FinishContain(ctx, c)
}

// Containment is a containment between its halves: the versions to revoke and what is
// known so far.
type Containment struct {
	// Versions are the versions to revoke, current first, then previous and pending.
	Versions []StagedVersion
	// Result holds the uses the containment cut off (Ended, EndedUnknown).
	Result ContainResult
}

// StagedVersion is a version and the stage it holds.
type StagedVersion struct {
	Stage   secret.Stage
	Version secret.Version
}

// Request is the revoke a containment makes of v: its sessions ended, nothing kept.
func (v StagedVersion) Request() rotators.RevokeRequest {
	return rotators.RevokeRequest{Version: v.Version, EndSessions: true}
}

// PrepareContain reads the versions Contain must revoke. It changes nothing.
func (s Steps) PrepareContain(ctx context.Context) (Containment, error) {
	var c Containment
	// One listing rather than a read per stage: containment needs the versions' handles,
	// not their material, and a batch prepares hundreds of secrets at once.
	all, err := s.Store.ListVersions(ctx, s.SecretID)
	if errors.Is(err, stores.ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("list versions: %w", err)
	}
	for _, stage := range []secret.Stage{secret.StageCurrent, secret.StagePrevious, secret.StagePending} {
		if i := slices.IndexFunc(all, func(v secret.Version) bool { return v.Has(stage) }); i >= 0 {
			c.Versions = append(c.Versions, StagedVersion{Stage: stage, Version: all[i]})
		}
	}
	return c, nil
}

// ListUses adds to c the uses the target shows of its versions, before they are revoked:
// an incident skips the revoke gate (containment means now) but records whom it cut off.
func (s Steps) ListUses(ctx context.Context, c *Containment) {
	for _, v := range c.Versions {
		s.recordEnded(ctx, v.Version, &c.Result)
	}
}

// AddEnded adds uses a group revoke reported ending to c, each once.
func (c *Containment) AddEnded(uses []rotators.Use) {
	for _, u := range uses {
		if !slices.Contains(c.Result.Ended, u) {
			c.Result.Ended = append(c.Result.Ended, u)
		}
	}
}

// FinishContain completes a containment whose versions are all revoked: a kind with a
// second step purges them (a leaked credential is not kept for a rollback; deleting the
// IAM key also frees the slot the new key needs) and a pending version is discarded from
// the store.
func (s Steps) FinishContain(ctx context.Context, c Containment) (ContainResult, error) {
	res := c.Result
	res.Revoked = nil
	for _, v := range c.Versions {
		res.Revoked = append(res.Revoked, v.Version.Number)
	}
	for _, v := range c.Versions {
		if p, ok := s.Rotator.(rotators.Purger); ok {
			if err := p.Purge(ctx, v.Request()); err != nil {
				return res, fmt.Errorf("contain: purge %s version %d: %w", v.Stage, v.Version.Number, err)
			}
		}
		if v.Stage == secret.StagePending {
			if err := s.discard(ctx, v.Version.Token); err != nil {
				return res, err
			}
			res.Discarded = true
		}
	}
	return res, nil
}

// recordEnded adds to res the uses of v the target shows, before Contain revokes it: an
// incident skips the revoke gate (containment means now) but records whom it cut off. A
// failure to list them never holds up the containment; it is noted instead. Versions
// that share a login (a single-strategy role) report the same sessions: each is listed
// once.
func (s Steps) recordEnded(ctx context.Context, v secret.Version, res *ContainResult) {
	r, ok := s.Rotator.(rotators.UsageReporter)
	if !ok {
		return
	}
	usage, err := r.InUse(ctx, rotators.UsageRequest{Version: v})
	if err != nil {
		if res.EndedUnknown == "" {
			res.EndedUnknown = fmt.Sprintf("list the uses of version %d before containing it: %v", v.Number, err)
		}
		return
	}
	for _, u := range usage.Uses {
		if !slices.Contains(res.Ended, u) {
			res.Ended = append(res.Ended, u)
		}
	}
}

// Supersede cleans up after a rotation that was stopped without its compensation (an
// incident terminated it): a pending version is revoked, keeping current, and discarded,
// and the previous version, whose grace period the stop cut short, is revoked. It never
// promotes anything, so a credential an incident revoked cannot come back.
func (s Steps) Supersede(ctx context.Context) error {
	cur, err := s.Current(ctx)
	if err != nil {
		return err
	}
	for _, stage := range []secret.Stage{secret.StagePending, secret.StagePrevious} {
		v, _, err := s.Store.Read(ctx, s.SecretID, stage)
		if errors.Is(err, stores.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s version: %w", stage, err)
		}
		if err := s.Rotator.Revoke(ctx, rotators.RevokeRequest{Version: v, Keep: cur}); err != nil {
			return fmt.Errorf("supersede: revoke %s version %d: %w", stage, v.Number, err)
		}
		if stage == secret.StagePending {
			if err := s.discard(ctx, v.Token); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s Steps) discard(ctx context.Context, token secret.VersionToken) error {
	err := s.Store.DiscardPending(ctx, s.SecretID, token)
	if err != nil && !errors.Is(err, stores.ErrNotFound) && !errors.Is(err, stores.ErrNotPending) {
		return fmt.Errorf("discard pending version: %w", err)
	}
	return nil
}
