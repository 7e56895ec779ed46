package rotation_test

import (
	"context"
	"errors"
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

// stageRefusing is a store that refuses to stage a version, as a full disk or a store
// that rejects the write does, after the target has minted.
type stageRefusing struct{ stores.Store }

func (stageRefusing) StagePending(context.Context, stores.StageRequest) (secret.Version, error) {
	return secret.Version{}, errors.New("store refused the write")
}

// sweepFails is a minting target whose Sweep cannot reach it while fail is set.
type sweepFails struct {
	*fake.Minting
	fail bool
}

func (s *sweepFails) Sweep(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	if s.fail {
		return nil, errors.New("connection refused")
	}
	return s.Minting.Sweep(ctx, req)
}

// mintedThenRefused rotates once (t1, current) and then runs a Create for t2 that mints a
// key and fails to stage it: the key exists on the target and nowhere else. It returns
// the steps over the working store, the current version and the orphaned key's ID.
func mintedThenRefused(t *testing.T, target rotators.Rotator, keys func() []string) (rotation.Steps, secret.Version, string) {
	t.Helper()
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	first, err := s.Create(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Promote(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	refused := s
	refused.Store = stageRefusing{store}
	if _, err := refused.Create(ctx, "t2"); err == nil {
		t.Fatal("Create staged into a store that refuses writes")
	}
	left := slices.DeleteFunc(keys(), func(id string) bool { return id == first.Version.Metadata["key_id"] })
	if len(left) != 1 {
		t.Fatalf("test setup: the failed Create left keys %v, want one", left)
	}
	return s, p.Current, left[0]
}

// A Create that gives up after the target minted (here the store refuses the write)
// leaves a key the store never names. The rollback finds it on the target and removes it,
// and says so in Swept; running it again finds nothing more and is still a success.
func TestRollbackSweepsWhatACreateThatGaveUpMinted(t *testing.T) {
	ctx := context.Background()
	target := fake.NewMinting()
	s, current, orphan := mintedThenRefused(t, target, target.Handles)

	res, err := s.Rollback(ctx, "t2", nil, &current, rotation.WithSweepSince(time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if !slices.Equal(target.Handles(), []string{current.Metadata["key_id"]}) {
		t.Fatalf("keys on the target after the rollback %v, want only the current %s", target.Handles(), current.Metadata["key_id"])
	}
	if len(res.Swept) != 1 || res.Swept[0]["key_id"] != orphan || len(res.Swept[0]) != 1 {
		t.Fatalf("Swept %v, want exactly the handle of key %s", res.Swept, orphan)
	}
	if !res.RestoredVerified || res.RevokeError != "" || res.Revoked {
		t.Fatalf("rollback result %+v, want the current version verified, nothing revoked, no error", res)
	}

	again, err := s.Rollback(ctx, "t2", nil, &current)
	if err != nil || len(again.Swept) != 0 || !again.RestoredVerified {
		t.Fatalf("a second rollback: %+v %v, want nothing swept and the current version verified", again, err)
	}
}

// A sweep the target refuses is reported like a failed revoke: the kept version is
// verified first, RevokeError says what is left, and running the rollback again sweeps.
// With no version to keep, the sweep is the rollback, and its failure is the error.
func TestRollbackReportsAFailedSweepLikeAFailedRevoke(t *testing.T) {
	ctx := context.Background()
	minting := fake.NewMinting()
	target := &sweepFails{Minting: minting}
	s, current, orphan := mintedThenRefused(t, target, minting.Handles)

	target.fail = true
	res, err := s.Rollback(ctx, "t2", nil, &current)
	if err != nil || res.RevokeError == "" || !res.RestoredVerified || len(res.Swept) != 0 {
		t.Fatalf("a rollback whose sweep fails: %+v %v, want the current version verified and RevokeError set", res, err)
	}
	if !slices.Contains(minting.Handles(), orphan) {
		t.Fatal("test setup: the orphan must survive a sweep that failed")
	}
	_, err = s.Rollback(ctx, "t2", nil, nil)
	if err == nil {
		t.Fatal("a rollback with nothing to keep whose sweep fails reported success")
	}

	target.fail = false
	res, err = s.Rollback(ctx, "t2", nil, &current)
	if err != nil || res.RevokeError != "" || len(res.Swept) != 1 || res.Swept[0]["key_id"] != orphan {
		t.Fatalf("the retried rollback: %+v %v, want key %s swept", res, err, orphan)
	}
	if slices.Contains(minting.Handles(), orphan) {
		t.Fatal("the retried rollback left the orphan on the target")
	}
}

// A rollback never sweeps when the store holds the failed version: it is revoked (and
// purged) by its handle, and no other key of the secret is touched.
func TestRollbackOfAStagedVersionDoesNotSweep(t *testing.T) {
	ctx := context.Background()
	minting := fake.NewMinting()
	target := &sweepFails{Minting: minting, fail: true}
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	if _, err := s.Create(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Promote(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Rollback(ctx, "t2", nil, &p.Current)
	if err != nil || res.RevokeError != "" || !res.Revoked || !res.Purged || len(res.Swept) != 0 {
		t.Fatalf("rollback of a staged version: %+v %v, want it revoked and purged, no sweep", res, err)
	}
}

// revokeFailsMinting is a minting target that cannot be reached to revoke while fail is
// set; Sweep still works.
type revokeFailsMinting struct {
	*fake.Minting
	fail bool
}

func (r *revokeFailsMinting) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	if r.fail {
		return errors.New("connection refused")
	}
	return r.Minting.Revoke(ctx, req)
}

// A rollback retried by the workflow runs as a new activity, without the heartbeat that
// recorded the failed version, and finds its pending stage discarded by the first
// attempt, whose revoke failed: the store names the version no more. The retry sweeps
// its credential from the target instead of reporting a rollback with nothing left to do.
func TestRetriedRollbackSweepsAVersionAnEarlierAttemptDiscarded(t *testing.T) {
	ctx := context.Background()
	minting := fake.NewMinting()
	target := &revokeFailsMinting{Minting: minting}
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	if _, err := s.Create(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Promote(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(ctx, "t2")
	if err != nil {
		t.Fatal(err)
	}

	target.fail = true
	res, err := s.Rollback(ctx, "t2", nil, &p.Current)
	if err != nil || !res.Discarded || res.RevokeError == "" {
		t.Fatalf("first attempt: %+v %v, want the pending version discarded and the revoke outstanding", res, err)
	}
	target.fail = false
	res, err = s.Rollback(ctx, "t2", nil, &p.Current)
	if err != nil || res.RevokeError != "" || len(res.Swept) != 1 || res.Swept[0]["key_id"] != created.Version.Metadata["key_id"] {
		t.Fatalf("the retry: %+v %v, want key %s swept", res, err, created.Version.Metadata["key_id"])
	}
	if !slices.Equal(minting.Handles(), []string{p.Current.Metadata["key_id"]}) {
		t.Fatalf("keys on the target %v, want only the current %s", minting.Handles(), p.Current.Metadata["key_id"])
	}
}
