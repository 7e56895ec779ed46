package awsiam

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// The rollback path: a revoked key is only deactivated, so Apply brings it back.
func TestRevokeThenApplyReactivates(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	s := &steps{t: t, r: r}
	v, m := s.mint(nil)

	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	tg.wantKeys(t, map[string]types.StatusType{keyID(v): types.StatusTypeInactive})
	wantErr(t, s.test(v, m), rotators.ErrCredentialRejected)

	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	tg.wantKeys(t, map[string]types.StatusType{keyID(v): types.StatusTypeActive})
	if err := s.test(v, m); err != nil {
		t.Fatalf("Test after Apply reactivated the key: %v", err)
	}
}

func TestApplyOfADeletedKeyIsRejected(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	s := &steps{t: t, r: r}
	v, m := s.mint(nil)
	for _, call := range []func() error{
		func() error { return r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}) },
		func() error { return r.Purge(t.Context(), rotators.RevokeRequest{Version: v}) },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), "no longer exists")
	wantNoSecret(t, err, m)
}

func TestPurgeDeletesAndIsIdempotent(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, func(c *Config) { c.DeleteAfter = 0 })
	s := &steps{t: t, r: r}
	v, _ := s.mint(nil)
	req := rotators.RevokeRequest{Version: v}
	if err := r.Revoke(t.Context(), req); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for range 2 {
		if err := r.Purge(t.Context(), req); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		tg.wantKeys(t, map[string]types.StatusType{})
	}
	// Revoking what Purge deleted is success too.
	if err := r.Revoke(t.Context(), req); err != nil {
		t.Fatalf("Revoke after Purge: %v", err)
	}
}

// Keep's key is never touched, by Revoke or by Purge, even when the version to revoke
// names the same key (a version recorded twice).
func TestRevokeAndPurgeLeaveKeep(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	s := &steps{t: t, r: r}
	v, _ := s.mint(nil)
	twin := v
	twin.Number, twin.Token = 99, "test/twin"
	req := rotators.RevokeRequest{Version: v, Keep: &twin}
	if err := r.Revoke(t.Context(), req); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := r.Purge(t.Context(), req); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	tg.wantKeys(t, map[string]types.StatusType{keyID(v): types.StatusTypeActive})
}

// A key reactivated after Revoke is in use again: Purge must not delete it.
func TestPurgeLeavesAReactivatedKey(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	s := &steps{t: t, r: r}
	v, m := s.mint(nil)
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m}); err != nil {
		t.Fatal(err)
	}
	err := r.Purge(t.Context(), rotators.RevokeRequest{Version: v})
	if err == nil {
		t.Fatal("Purge deleted a key that was reactivated")
	}
	wantErr(t, err, err, keyID(v), "Active", "reactivated")
	tg.wantKeys(t, map[string]types.StatusType{keyID(v): types.StatusTypeActive})
}

func TestVersionsOfAnotherUserAreRefused(t *testing.T) {
	tg := newTarget(t)
	other := newTarget(t)
	otherKey := other.createKey(t, types.StatusTypeActive)
	r := tg.rotator(t, nil)
	v := secret.Version{Number: 3, Metadata: map[string]string{MetadataAccessKeyID: otherKey, MetadataUser: other.user}}

	err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v})
	wantErr(t, err, rotators.ErrInvalidConfig, other.user, tg.user)
	err = r.Purge(t.Context(), rotators.RevokeRequest{Version: v})
	wantErr(t, err, rotators.ErrInvalidConfig, other.user)
	other.wantKeys(t, map[string]types.StatusType{otherKey: types.StatusTypeActive})
}

func TestRevokeOfAVersionWithoutKeyID(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: secret.Version{Number: 1}})
	wantErr(t, err, rotators.ErrInvalidConfig, MetadataAccessKeyID, "keyturn put --meta")
}

// A version recorded by hand with material but no metadata still names its key.
func TestApplyTakesTheKeyFromMaterialWithoutMetadata(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	s := &steps{t: t, r: r}
	v, m := s.mint(nil)
	tg.setStatus(t, keyID(v), types.StatusTypeInactive)
	bare := secret.Version{Number: v.Number}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: bare, Material: m}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: bare, Material: m}); err != nil {
		t.Fatalf("Test: %v", err)
	}
}
