// Package rotators defines what a credential kind must do to be rotated. Each kind is a
// subpackage (postgres, awsiam, httpapi, vaultpki, localca) in plain Go with no
// Temporal imports; rotatortest holds the conformance suite every kind must pass.
//
// A rotator never decides when to act; the rotation package sequences its methods and the
// store, and the workflow makes that sequence durable.
package rotators

import (
	"context"
	"errors"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Errors a rotator may return, matched with errors.Is. Both are final: retrying cannot
// help, so the workflow stops retrying and rolls back.
var (
	// ErrInvalidConfig: the inventory entry cannot work (a missing field, an unknown strategy).
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrPermissionDenied: the admin credential lacks a privilege the rotation needs.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrCredentialRejected: the target refused the credential under test. Test returns it
	// (wrapped) when a login fails; it is retryable, because targets can be eventually
	// consistent, within the step's bounded retries.
	ErrCredentialRejected = errors.New("credential rejected")
	// ErrCheckFailed: the credential logs in but fails the inventory's check (a query it
	// cannot run, an API call it may not make). Retrying cannot grant a privilege, so the
	// step fails at once; a rollback counts the kept credential as working when it logs in.
	ErrCheckFailed = errors.New("credential check failed")
)

// GenerateRequest asks for fresh material for the next version.
type GenerateRequest struct {
	SecretID secret.ID
	Token    secret.VersionToken
	// Current is the version consumers use now, or nil when the secret has none yet.
	Current *secret.Version
}

// Generated is fresh material and the handles that go with it. From Generate, nothing has
// changed on the target yet; from Mint, the target has made it.
type Generated struct {
	Material secret.Material
	// Metadata holds non-secret handles (a role name) that later steps need.
	Metadata map[string]string
}

// ApplyRequest asks the target to accept a version's material.
type ApplyRequest struct {
	Version  secret.Version
	Material secret.Material
}

// TestRequest asks for proof that a version's material works against the real target.
type TestRequest struct {
	Version  secret.Version
	Material secret.Material
}

// RevokeRequest asks the target to stop accepting a version.
type RevokeRequest struct {
	Version secret.Version
	// Keep is the version that must go on working, if any. A rotator whose versions share
	// a handle (one role, a new password each time) must not disable that handle.
	Keep *secret.Version
	// EndSessions asks to end the version's open sessions too, whatever the inventory
	// says (an incident: a leaked credential's sessions are the attacker's). Kinds without
	// sessions ignore it.
	EndSessions bool
}

// Rotator adapts one kind of credential on one target. Every kind is also either a
// Generator (Keyturn makes the material: a password) or a Minter (the target or a CA makes
// it: an access key, an API key, a certificate); the rotation package picks the path.
//
// Apply, Test and Revoke are idempotent: applying the same material twice, or revoking
// what is already revoked or never existed, is success.
type Rotator interface {
	// Apply makes the target accept a version's material. For a minted version the target
	// accepts it from the start; Apply then re-enables it where the target allows that (an
	// IAM key is reactivated), which is how a rollback restores a version, and is otherwise
	// a no-op.
	Apply(ctx context.Context, req ApplyRequest) error
	Test(ctx context.Context, req TestRequest) error
	Revoke(ctx context.Context, req RevokeRequest) error
}

// GroupRevoker is a Rotator that can revoke versions of many secrets on one target
// together: an incident's containment groups its scope by GroupKey and revokes each group
// in as few round trips (and commits) as the target allows, instead of one login and one
// transaction per version.
type GroupRevoker interface {
	Rotator
	// GroupKey is a comparable value, equal for rotators that act on the same target with
	// the same admin credential. It is for grouping only and must never be shown.
	GroupKey() any
	// RevokeGroup revokes each member's request as that member's own Revoke would (the
	// member's rotator decides what its version's handle is and refuses what it does not
	// manage), using the receiver's admin access; every member has the receiver's
	// GroupKey. outcomes[i] is the outcome of members[i]. It is idempotent, like Revoke.
	RevokeGroup(ctx context.Context, members []GroupMember) (outcomes []GroupOutcome)
}

// GroupOutcome is how one member of a RevokeGroup call ended.
type GroupOutcome struct {
	// Err is nil when the member's version is revoked.
	Err error
	// Ended are the uses (sessions) of the member's version the revoke ended, for a
	// request with EndSessions: who was cut off. Handles only.
	Ended []Use
}

// GroupMember is one version to revoke in a RevokeGroup call, with its secret's rotator.
type GroupMember struct {
	Rotator GroupRevoker
	Request RevokeRequest
}

// Generator is a Rotator whose material Keyturn makes itself.
//
// Generate is pure: the material is recorded in the store before the target changes, so a
// retried step reuses it instead of minting another (the pattern of Vault's database
// engine).
type Generator interface {
	Rotator
	Generate(ctx context.Context, req GenerateRequest) (Generated, error)
}

// MintRequest asks the target for a new credential.
type MintRequest struct {
	SecretID secret.ID
	// Token identifies the version; a target with idempotency keys gets it as the key, so
	// a retried Mint returns the same credential instead of a second one.
	Token secret.VersionToken
	// Current is the version consumers use now, or nil when the secret has none yet.
	Current *secret.Version
	// Abandoned holds the metadata of credentials an earlier, interrupted Mint for this
	// same token made but never got into the store. Their material is lost, so Mint must
	// make them stop working (delete the key, revoke the certificate) unless it returns
	// that same credential again, before it makes another.
	Abandoned []map[string]string
	// Minted, when set, must be called with the new credential's metadata as soon as the
	// target has made it and before Mint returns, so that an interrupted step can pass it
	// back as Abandoned. The metadata must hold no secret material. It is a hint only: a
	// worker killed right after the target answered never calls it (and a heartbeat
	// carrying it may never reach the server), so Mint must not rely on Abandoned alone.
	Minted func(metadata map[string]string)
	// Known holds the metadata of every version the store keeps for this secret (current,
	// previous, pending and older ones it still lists). A credential on the target that
	// none of them holds is not accounted for by Keyturn.
	Known []map[string]string
	// Since is when the rotation that asks for this version began: the first attempt of
	// its Create step started at or after it. Zero means unknown, or that no earlier
	// attempt can exist (the Create activity sets it from its second attempt on), and then
	// Mint need not look for credentials by age.
	//
	// Together with Known and Token it lets Mint decide from what the target shows, not
	// from Abandoned alone: before it makes a credential, Mint must find every credential
	// an earlier, interrupted Mint for this same Token made (one that no Known version
	// holds and that the target made for Token, or, where the target records nothing of
	// the token, made at or after Since) and make it stop working, unless it returns that
	// same credential again. How each kind tells them apart is in its package documentation.
	Since time.Time
	// Until, when set, bounds that window from above: a credential made after it is not
	// this rotation's, whatever else matches. A rollback's sweep sets it to the end of the
	// Create step (plus a margin), so a rollback retried for hours does not remove
	// credentials someone else made meanwhile. Mint leaves it zero: its window ends now.
	Until time.Time
}

// Minter is a Rotator whose material the target makes (or signs). Mint changes the target
// and returns the material; the rotation stages it in the store within the same step, so
// material moves from the target to the store inside one activity.
type Minter interface {
	Rotator
	Mint(ctx context.Context, req MintRequest) (Generated, error)
}

// Sweeper is a Minter that can find, after the fact, the credentials a Mint made for a
// version the store never got, and remove them. The rollback of a rotation whose Create
// gave up after the target minted (its retries ran out, or the store refused the write)
// calls it: the store names no such credential, so nothing else would ever revoke it.
type Sweeper interface {
	Minter
	// Sweep removes (deletes, revokes) every credential the target holds that a Mint for
	// req.Token made and that no req.Known version holds, found by the same search Mint
	// runs before it mints (req.Token, req.Since, req.Abandoned; req.Minted is not called
	// and nothing is minted). It returns the metadata of what this call removed: handles
	// only (a key ID, a serial), never material. It is idempotent: a credential already
	// gone is not returned again and is no error. With Since zero, a kind that finds
	// credentials by age finds none that way.
	Sweep(ctx context.Context, req MintRequest) (removed []map[string]string, err error)
}

// Purger is a Rotator whose Revoke can still be undone (an IAM key is deactivated, and
// reactivating it is a rollback) and whose revocation becomes final in a second step.
// The workflow calls Purge PurgeAfter() after a successful Revoke. Purging what is already
// gone is success.
type Purger interface {
	Rotator
	Purge(ctx context.Context, req RevokeRequest) error
	// PurgeAfter is how long a revoked version stays recoverable before Purge.
	PurgeAfter() time.Duration
}

// Renewer is a Rotator whose versions expire (a certificate). Due reports whether version v
// should be replaced at now because a configured share of its lifetime has passed, and
// when that point is (or was). The schedules rotate such a secret when it is due, as well
// as on its cron schedule. A version without the metadata Due needs is due at once.
type Renewer interface {
	Rotator
	Due(v secret.Version, now time.Time) (due bool, at time.Time)
}

// UsageRequest asks whether a version is still in use at the target.
type UsageRequest struct {
	Version secret.Version
	// Keep is the version that replaced it and must not be counted (a single-strategy
	// role shares its name with the new version).
	Keep *secret.Version
	// Since is when the replacement was promoted: a use the target saw before it is not
	// evidence that a consumer has not moved (an IAM key's last-used time, a session
	// opened earlier under a shared role name).
	Since time.Time
}

// Use is one use of a credential the target reports: who, from where, since when. It
// names callers and never carries material.
type Use struct {
	// User is the login the use runs as (a role name, an access key ID).
	User string `json:"user,omitempty"`
	// Application is what the client calls itself (application_name, a user agent).
	Application string `json:"application,omitempty"`
	// Client is the client's address, when the target knows it.
	Client string `json:"client,omitempty"`
	// Since is when the use began (a session's start) or was last seen (a key's last use).
	Since time.Time `json:"since,omitempty"`
	// Detail says anything else an operator needs to find the caller (a backend PID, a
	// service name), in words.
	Detail string `json:"detail,omitempty"`
}

// Usage is what the target showed about one version.
type Usage struct {
	// Uses lists the uses found; empty means the target shows the version idle.
	Uses []Use `json:"uses,omitempty"`
	// Checked says in words what was looked at ("sessions of role app_b in
	// pg_stat_activity"), for the status and the notification of a held revoke.
	Checked string `json:"checked"`
	// NotBefore, when set, is when an empty Uses begins to mean idle: the target reports
	// uses this late (IAM's last-used data can lag by hours, an API may update a key's
	// last use in batches), so before NotBefore an empty Uses only says that no use has
	// been recorded yet, and a consumer still on the old version may have used it since
	// the promotion. The revoke gate keeps waiting until then. The zero time: an empty
	// Uses means idle at once.
	NotBefore time.Time `json:"notBefore,omitzero"`
}

// InUse reports whether the target showed any use.
func (u Usage) InUse() bool { return len(u.Uses) > 0 }

// IdleAt reports whether the answer shows the version idle at now: no use was found and
// the target's reporting delay (NotBefore) has passed. The revoke gate passes its
// workflow time.
func (u Usage) IdleAt(now time.Time) bool { return !u.InUse() && !now.Before(u.NotBefore) }

// UsageReporter is a Rotator whose target can tell whether a version is still in use.
// The revoke gate asks it before revoking an old version and waits, within the secret's
// policy, until the version is idle, so that a consumer that has not moved yet is held up
// instead of broken. Kinds that cannot tell do not implement it; their revoke is gated by
// the grace period alone.
type UsageReporter interface {
	Rotator
	// InUse reads, and never changes, the target. It is safe to call repeatedly.
	InUse(ctx context.Context, req UsageRequest) (Usage, error)
}
