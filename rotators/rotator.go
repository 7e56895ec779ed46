// Package rotators defines what a credential kind must do to be rotated. Each kind is a
// subpackage (postgres, later awsiam, httpapi, vaultpki, localca) in plain Go with no
// Temporal imports; rotatortest holds the conformance suite every kind must pass.
//
// A rotator never decides when to act; the rotation package sequences its methods and the
// store, and the workflow makes that sequence durable.
package rotators

import (
	"context"
	"errors"

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

// Generated is fresh material and the handles that go with it. Nothing has changed on the
// target yet.
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
}

// Rotator adapts one kind of credential on one target.
//
// Generate is pure: the material is recorded in the store before the target changes, so a
// retried step reuses it instead of minting another (the pattern of Vault's database
// engine). Apply, Test and Revoke are idempotent: applying the same material twice, or
// revoking what is already revoked or never existed, is success.
type Rotator interface {
	Generate(ctx context.Context, req GenerateRequest) (Generated, error)
	Apply(ctx context.Context, req ApplyRequest) error
	Test(ctx context.Context, req TestRequest) error
	Revoke(ctx context.Context, req RevokeRequest) error
}
