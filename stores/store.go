// Package stores defines where credential versions live for their consumers. Each
// implementation is a subpackage (file, vaultkv and awssm); storetest holds the
// conformance suite every implementation must pass. ConsumerMetadataValue and
// CheckConsumerMetadata are the one rule for how metadata appears in a JSON object
// consumers read (the port of a database secret is a number, as in AWS's structure for
// database credentials).
package stores

import (
	"context"
	"errors"

	"github.com/keyturn/keyturn/secret"
)

// Errors a store returns. Callers match them with errors.Is; implementations wrap them
// with the operation, never with material.
var (
	// ErrNotFound: no such secret, or no version holds the asked stage or token.
	ErrNotFound = errors.New("not found")
	// ErrNotPending: the operation needs a pending version (discard) but the token is
	// current or previous. Discarding it would lose the credential consumers use.
	ErrNotPending = errors.New("version is not pending")
	// ErrConflict: another writer changed the secret between this call's read and its
	// write (a failed check-and-set). The other writer's change stands; read again.
	ErrConflict = errors.New("concurrent change")
	// ErrPermissionDenied: the store refused the worker's identity. Retrying cannot help;
	// the message names the policy to grant.
	ErrPermissionDenied = errors.New("permission denied by the store")
)

// StageRequest asks a store to stage a new pending version.
type StageRequest struct {
	SecretID secret.ID
	Token    secret.VersionToken
	Material secret.Material
	Metadata map[string]string
}

// Store keeps the versions of secrets in three stages (pending, current, previous).
// Consumers read current. Every method is idempotent: calling it again with the same
// arguments after a success (or after a crash at any point) gives the same state.
type Store interface {
	// StagePending stores a new version under req.Token with the pending stage. If a version
	// with that token already exists it is returned unchanged and its material is NOT
	// replaced: a retried create must reuse what the first attempt recorded. Any other
	// pending version is superseded (it loses the stage), so a pending label never sticks.
	StagePending(ctx context.Context, req StageRequest) (secret.Version, error)

	// Read returns the version holding stage, with its material. ErrNotFound if none.
	Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error)

	// ReadVersion returns the version with the token, with its material. ErrNotFound if none.
	ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error)

	// Promote makes the token's version current and the former current previous, in one
	// atomic change. The token may be pending (a rotation) or previous (a rollback).
	// Promoting the current version again is a no-op. ErrNotFound for an unknown token.
	// Two promotes racing on one secret change it once: the loser returns nil (it found
	// the work done) or ErrConflict, never a second promotion.
	Promote(ctx context.Context, id secret.ID, token secret.VersionToken) error

	// DiscardPending removes a pending version. An unknown token is success (already gone);
	// a token that is current or previous is refused with ErrNotPending.
	DiscardPending(ctx context.Context, id secret.ID, token secret.VersionToken) error

	// ListVersions returns the versions the store keeps for the secret, oldest first.
	// ErrNotFound if the secret has none.
	ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error)
}
