package rotation_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

const id = secret.ID("prod/orders-db/app")

func newSteps(t *testing.T, shared bool) (rotation.Steps, *fake.Rotator, *file.Store) {
	t.Helper()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mode := fake.Twins
	if shared {
		mode = fake.Shared
	}
	target := fake.New(mode)
	return rotation.Steps{SecretID: id, Rotator: target, Store: store}, target, store
}

// rotateFully runs one whole rotation (without grace) and returns the new current version.
func rotateFully(t *testing.T, s rotation.Steps, token secret.VersionToken) secret.Version {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Create(ctx, token); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := s.Test(ctx, token); err != nil {
		t.Fatalf("test: %v", err)
	}
	p, err := s.Promote(ctx, token)
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if p.Previous != nil {
		if err := s.Revoke(ctx, *p.Previous, &p.Current); err != nil {
			t.Fatalf("revoke: %v", err)
		}
	}
	return p.Current
}

func TestCreateTwiceWithOneTokenMakesOneVersion(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	first, err := s.Create(ctx, "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	_, m1, _ := store.ReadVersion(ctx, id, "tok-1")
	again, err := s.Create(ctx, "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	_, m2, _ := store.ReadVersion(ctx, id, "tok-1")
	if !again.Reused || again.Version.Token != first.Version.Token || again.Version.Number != first.Version.Number {
		t.Fatalf("second create made another version: %+v then %+v", first, again)
	}
	if !m1.Get("password").Equal(m2.Get("password")) {
		t.Fatal("second create replaced the recorded material")
	}
	if target.Applies() != 2 {
		t.Fatalf("a retried create must re-apply the recorded material (the target may have missed it): %d applies", target.Applies())
	}
	all, _ := store.ListVersions(ctx, id)
	if len(all) != 1 {
		t.Fatalf("want 1 version, got %d", len(all))
	}
	if !target.Works("app_a", m1.Get("password")) {
		t.Fatal("target does not accept the recorded material")
	}
}

func TestPromoteTwiceReportsSameResult(t *testing.T) {
	s, _, _ := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	if _, err := s.Create(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	p1, err := s.Promote(ctx, "tok-2")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Promote(ctx, "tok-2")
	if err != nil {
		t.Fatal(err)
	}
	if p1.Previous == nil || p2.Previous == nil || p1.Previous.Token != v1.Token || p2.Previous.Token != v1.Token || p2.Current.Token != "tok-2" {
		t.Fatalf("promote twice: %+v then %+v", p1, p2)
	}
}

// halfPromoted shows the version tok-2 as current and still pending until it is promoted
// again, as the AWS store leaves a version whose promote stopped between its two calls.
type halfPromoted struct {
	stores.Store
	promotes int
}

func (h *halfPromoted) ReadVersion(ctx context.Context, sid secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	v, m, err := h.Store.ReadVersion(ctx, sid, token)
	if err == nil && token == "tok-2" && h.promotes == 0 {
		v.Stages = []secret.Stage{secret.StageCurrent, secret.StagePending}
	}
	return v, m, err
}

func (h *halfPromoted) Promote(ctx context.Context, sid secret.ID, token secret.VersionToken) error {
	h.promotes++
	return h.Store.Promote(ctx, sid, token)
}

// TestPromoteFinishesAHalfDonePromote: a version that is current but still pending was
// promoted by an attempt that stopped halfway; promoting again asks the store, which
// takes the pending stage off, instead of reporting it done.
func TestPromoteFinishesAHalfDonePromote(t *testing.T) {
	s, _, _ := newSteps(t, false)
	ctx := context.Background()
	rotateFully(t, s, "tok-1")
	if _, err := s.Create(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	store := &halfPromoted{Store: s.Store}
	s.Store = store
	p, err := s.Promote(ctx, "tok-2")
	if err != nil {
		t.Fatal(err)
	}
	if store.promotes != 1 || p.Current.Token != "tok-2" || p.Current.Has(secret.StagePending) {
		t.Fatalf("promote of a half-promoted version: %d store promotes (want 1), result %+v", store.promotes, p)
	}
}

func TestRotationsAlternateTwinsAndRevokeOld(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	_, m1, _ := store.ReadVersion(ctx, id, v1.Token)
	v2 := rotateFully(t, s, "tok-2")
	_, m2, _ := store.ReadVersion(ctx, id, v2.Token)
	if v1.Metadata["role"] == v2.Metadata["role"] {
		t.Fatalf("twins did not swap: %s then %s", v1.Metadata["role"], v2.Metadata["role"])
	}
	if target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("old credential still works after revoke")
	}
	if !target.Works(v2.Metadata["role"], m2.Get("password")) {
		t.Fatal("new credential does not work")
	}
}

func TestRollbackOfPendingKeepsCurrentAndDiscards(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	_, m1, _ := store.ReadVersion(ctx, id, v1.Token)
	created, err := s.Create(ctx, "tok-2")
	if err != nil {
		t.Fatal(err)
	}
	_, m2, _ := store.ReadVersion(ctx, id, "tok-2")

	for range 2 { // a rollback is idempotent
		res, err := s.Rollback(ctx, "tok-2", nil, &v1)
		if err != nil {
			t.Fatal(err)
		}
		if !res.RestoredVerified || res.Restored.Token != v1.Token || res.Repromoted {
			t.Fatalf("rollback result %+v", res)
		}
	}
	if target.Works(created.Version.Metadata["role"], m2.Get("password")) {
		t.Fatal("the failed version must be revoked on the target")
	}
	if !target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("the current version must keep working")
	}
	if _, _, err := store.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("pending must be discarded, got %v", err)
	}
}

func TestRollbackAfterPromoteRepromotesPrevious(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	_, m1, _ := store.ReadVersion(ctx, id, v1.Token)
	if _, err := s.Create(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Rollback(ctx, "tok-2", nil, &v1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Repromoted || !res.RestoredVerified {
		t.Fatalf("rollback result %+v", res)
	}
	cur, _, err := store.Read(ctx, id, secret.StageCurrent)
	if err != nil || cur.Token != v1.Token {
		t.Fatalf("current after abort: %v %v", cur.Token, err)
	}
	if !target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("restored version must work")
	}
}

// With one role for every version (single strategy), Apply of the new version replaced
// the password the consumers use; rollback must notice and put the old one back.
func TestRollbackSharedRoleReappliesCurrent(t *testing.T) {
	s, target, store := newSteps(t, true)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	_, m1, _ := store.ReadVersion(ctx, id, v1.Token)
	if _, err := s.Create(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	if target.Works("app", m1.Get("password")) {
		t.Fatal("test setup: the shared role should have the new password now")
	}
	res, err := s.Rollback(ctx, "tok-2", nil, &v1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reapplied || !res.RestoredVerified {
		t.Fatalf("rollback must re-apply and verify the kept version: %+v", res)
	}
	if !target.Works("app", m1.Get("password")) {
		t.Fatal("the kept password must work again")
	}
}

func TestRollbackWhenNothingWasStaged(t *testing.T) {
	s, _, _ := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	res, err := s.Rollback(ctx, "tok-never", nil, &v1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Discarded || res.Repromoted || !res.RestoredVerified {
		t.Fatalf("rollback of nothing should only verify the current version: %+v", res)
	}
}

func TestRollbackFailsLoudlyWhenRestoreCannotWork(t *testing.T) {
	s, target, _ := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	// Someone broke the current credential outside Keyturn and the target now refuses
	// any re-apply: the rollback must say so, not claim success.
	s.Rotator = &refusingTarget{Rotator: target}
	target.SetPassword("app_a", "changed-by-someone")
	_, err := s.Rollback(ctx, "tok-2", nil, &v1)
	if !errors.Is(err, rotation.ErrRestoreFailed) {
		t.Fatalf("want ErrRestoreFailed, got %v", err)
	}
}

// A check query that fails for every credential must not make the rollback re-apply the
// kept version or report it broken: it logs in, as it did before the rotation.
func TestRollbackCountsFailedCheckAsWorkingLogin(t *testing.T) {
	s, target, _ := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	if _, err := s.Create(ctx, "tok-2"); err != nil {
		t.Fatal(err)
	}
	target.CheckFails = true
	if err := s.Test(ctx, "tok-2"); !errors.Is(err, rotators.ErrCheckFailed) {
		t.Fatalf("test: %v, want ErrCheckFailed", err)
	}
	res, err := s.Rollback(ctx, "tok-2", nil, &v1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reapplied || !res.RestoredVerified || !res.Discarded {
		t.Fatalf("rollback result %+v", res)
	}
}

// On a secret's first rotation there is nothing to go back to: an abort after promote
// must leave the new version current and working, not revoke the only credential.
func TestRollbackOfFirstVersionKeepsIt(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	if _, err := s.Create(ctx, "tok-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, "tok-1"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Rollback(ctx, "tok-1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, m, err := store.Read(ctx, id, secret.StageCurrent)
	if err != nil || !res.KeptFailed || res.Revoked || v.Token != "tok-1" || !target.Works(v.Metadata["role"], m.Get("password")) {
		t.Fatalf("the only version must stay current and working: %+v, %v", res, err)
	}
}

// revokeFails is a target that cannot be reached to revoke.
type revokeFails struct {
	*fake.Rotator
	fail bool
}

func (r *revokeFails) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	if r.fail {
		return errors.New("connection refused")
	}
	return r.Rotator.Revoke(ctx, req)
}

// When the target cannot be reached, the pending stage is still removed, and a retry
// that knows the failed version (from the activity's heartbeat) revokes it later.
func TestRollbackDiscardsPendingEvenWhenRevokeFails(t *testing.T) {
	s, target, store := newSteps(t, false)
	ctx := context.Background()
	v1 := rotateFully(t, s, "tok-1")
	created, err := s.Create(ctx, "tok-2")
	if err != nil {
		t.Fatal(err)
	}
	_, m2, _ := store.ReadVersion(ctx, id, "tok-2")
	flaky := &revokeFails{Rotator: target, fail: true}
	s.Rotator = flaky
	failed, err := s.Inspect(ctx, "tok-2")
	if err != nil || failed == nil {
		t.Fatalf("inspect: %v %v", failed, err)
	}
	// The kept version is tested first, and works: the rollback reports that, and the
	// revoke it could not do, instead of failing as if nothing worked.
	res, err := s.Rollback(ctx, "tok-2", failed, &v1)
	if err != nil || res.RevokeError == "" || res.Revoked || !res.RestoredVerified {
		t.Fatalf("a rollback whose revoke fails must verify the kept version and report the revoke: %+v %v", res, err)
	}
	if !target.Works(created.Version.Metadata["role"], m2.Get("password")) {
		t.Fatal("test setup: the failed version must still work while its revoke fails")
	}
	if _, _, err := store.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("pending must be discarded before the revoke: %v", err)
	}
	flaky.fail = false
	res, err = s.Rollback(ctx, "tok-2", failed, &v1)
	if err != nil || !res.Revoked || !res.RestoredVerified || res.RevokeError != "" {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if target.Works(created.Version.Metadata["role"], m2.Get("password")) {
		t.Fatal("the retried rollback must revoke the failed version")
	}
}

// A failed version of a kind with a recovery window is purged by the rollback at once:
// nobody will want it back, and it would hold the target's slot (IAM's second key).
func TestRollbackPurgesTheFailedVersion(t *testing.T) {
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.NewMinting()
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	first, err := s.Create(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, first.Version.Token); err != nil {
		t.Fatal(err)
	}
	second, err := s.Create(ctx, "t2")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Rollback(ctx, "t2", &second.Version, &first.Version)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if !res.Revoked || !res.Purged || !res.RestoredVerified {
		t.Fatalf("rollback result %+v, want revoked, purged and the restored version verified", res)
	}
	if total, active := target.Keys(); total != 1 || active != 1 {
		t.Fatalf("%d keys (%d active) after the rollback, want only the restored one", total, active)
	}
}

// Contain revokes and purges every version, current included, and discards a pending one.
func TestContainRevokesEverything(t *testing.T) {
	ctx := context.Background()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.NewMinting()
	s := rotation.Steps{SecretID: "app/key", Rotator: target, Store: store}
	for _, token := range []secret.VersionToken{"t1", "t2"} {
		c, err := s.Create(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Promote(ctx, c.Version.Token); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Contain(ctx)
	if err != nil {
		t.Fatalf("contain: %v", err)
	}
	if len(res.Revoked) != 3 || !res.Discarded {
		t.Fatalf("contain result %+v, want 3 versions revoked and the pending one discarded", res)
	}
	if total, _ := target.Keys(); total != 0 {
		t.Fatalf("%d keys left on the target after containment, want none", total)
	}
	if _, _, err := store.Read(ctx, "app/key", secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("pending after containment: %v", err)
	}
}
