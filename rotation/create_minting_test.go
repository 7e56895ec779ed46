package rotation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// recordingMinter records the MintRequests Create sends.
type recordingMinter struct {
	*fake.Minting
	reqs []rotators.MintRequest
}

func (r *recordingMinter) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	r.reqs = append(r.reqs, req)
	return r.Minting.Mint(ctx, req)
}

// Create gives Mint what the store knows of the secret and when the rotation began, so
// the rotator can tell an orphan of this rotation from a credential in use.
func TestCreatePassesKnownAndSinceToMint(t *testing.T) {
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := &recordingMinter{Minting: fake.NewMinting()}
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	first, err := s.Create(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if _, err := s.Create(ctx, "t2", rotation.WithMintSince(since)); err != nil {
		t.Fatal(err)
	}
	req := target.reqs[len(target.reqs)-1]
	if !req.Since.Equal(since) {
		t.Errorf("Since %v, want %v", req.Since, since)
	}
	if len(req.Known) != 1 || req.Known[0]["key_id"] != first.Version.Metadata["key_id"] {
		t.Errorf("Known %v, want the metadata of version t1 %v", req.Known, first.Version.Metadata)
	}
	if len(target.reqs[0].Known) != 0 || !target.reqs[0].Since.IsZero() {
		t.Errorf("first Mint got Known %v and Since %v, want none (nothing stored, no WithMintSince)", target.reqs[0].Known, target.reqs[0].Since)
	}
}

// lateStore hides the token's version from the first ReadVersion, as when a concurrent
// attempt of the same step stages between this attempt's look-up and its own staging.
type lateStore struct {
	stores.Store
	hidden bool
}

func (l *lateStore) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	if !l.hidden {
		l.hidden = true
		return secret.Version{}, nil, stores.ErrNotFound
	}
	return l.Store.ReadVersion(ctx, id, token)
}

// Two attempts of one Create race: the one that stages second keeps the other's version
// and removes the credential it minted itself, which nobody would ever read.
func TestCreateRemovesTheCredentialOfTheAttemptThatStagedSecond(t *testing.T) {
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.NewMinting()
	winner, err := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}.Create(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	// The loser looked up the token before the winner staged, and mints after. (The fake
	// finds the winner's key by token but the store knows it: it stays.)
	loser := rotation.Steps{SecretID: "app/key", Rotator: target, Store: &lateStore{Store: store}}
	got, err := loser.Create(ctx, "t1")
	if err != nil {
		t.Fatalf("the second attempt: %v", err)
	}
	if got.Version.Metadata["key_id"] != winner.Version.Metadata["key_id"] {
		t.Fatalf("the second attempt reports key %s, want the staged %s", got.Version.Metadata["key_id"], winner.Version.Metadata["key_id"])
	}
	if h := target.Handles(); !slices.Equal(h, []string{winner.Version.Metadata["key_id"]}) {
		t.Fatalf("keys on the target %v, want only the staged one %s", h, winner.Version.Metadata["key_id"])
	}
}
