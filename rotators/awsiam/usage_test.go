package awsiam

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// signWith makes one STS call signed with the version's key, as a consumer still using
// it would. moto records the key's last use on every request it receives signed with it.
func signWith(t *testing.T, tg target, m secret.Material) {
	t.Helper()
	cfg := withCredentials(tg.admin, m.Get(FieldAccessKeyID).Reveal(), m.Get(FieldSecretAccessKey).Reveal())
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("GetCallerIdentity with the old key: %v", err)
	}
}

// afterASecond returns a time after now that a moto timestamp taken later cannot tie
// with, whatever the resolution AWS and moto give LastUsedDate.
func afterASecond() time.Time {
	since := time.Now()
	time.Sleep(time.Until(since.Truncate(time.Second).Add(1100 * time.Millisecond)))
	return since
}

func inUse(t *testing.T, r *Rotator, old secret.Version, keep *secret.Version, since time.Time) rotators.Usage {
	t.Helper()
	u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: old, Keep: keep, Since: since})
	if err != nil {
		t.Fatalf("InUse: %v", err)
	}
	return u
}

// TestInUseByLastUsed: a key never used, or last used before the promotion, is idle; a
// use of the old key after the promotion, as moto records it at once, is reported with
// the key, the service and the region. Test's own STS call with the new key does not
// count against the old one.
func TestInUseByLastUsed(t *testing.T) {
	tg := newTarget(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v1, m1 := s.mint(nil)
	if u := inUse(t, s.r, v1, nil, time.Now().Add(-time.Hour)); u.InUse() {
		t.Fatalf("a key never used shows in use: %+v", u)
	}
	signWith(t, tg, m1) // the consumer, before the rotation
	v2, m2 := s.mint(&v1)
	if err := s.test(v2, m2); err != nil {
		t.Fatalf("Test: %v", err)
	}
	promoted := afterASecond()

	u := inUse(t, s.r, v1, &v2, promoted)
	if u.InUse() {
		t.Fatalf("a key last used before the promotion shows in use: %+v", u)
	}
	if !strings.Contains(u.Checked, keyID(v1)) || !strings.Contains(u.Checked, "4 hours late") {
		t.Errorf("Checked = %q; want the key named and AWS's reporting delay said", u.Checked)
	}

	signWith(t, tg, m1) // a consumer that has not moved
	u = inUse(t, s.r, v1, &v2, promoted)
	if len(u.Uses) != 1 {
		t.Fatalf("InUse after a use of the old key = %+v, want one use", u)
	}
	got := u.Uses[0]
	if got.User != keyID(v1) || !got.Since.After(promoted) || !strings.Contains(got.Detail, "service sts") ||
		!strings.Contains(got.Detail, "region "+tg.admin.Region) {
		t.Errorf("use = %+v; want key %s, a time after %v, service sts and region %s", got, keyID(v1), promoted, tg.admin.Region)
	}
	if strings.Contains(got.Detail+u.Checked, m1.Get(FieldSecretAccessKey).Reveal()) {
		t.Error("the usage shows a secret access key")
	}
	// The new key's use is its own: asked about v2, the answer is about v2's key.
	if u := inUse(t, s.r, v2, nil, promoted); u.InUse() {
		t.Errorf("the new key, unused since the promotion, shows in use: %+v", u)
	}

	// Revoke and Purge: a key IAM no longer knows is idle.
	if err := s.r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if err := s.r.Purge(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if u := inUse(t, s.r, v1, &v2, promoted); u.InUse() || !strings.Contains(u.Checked, "no longer exists") {
		t.Errorf("InUse of a deleted key = %+v, want idle, saying the key is gone", u)
	}
}

// TestInUseIdleNotBeforeTheDelay: a key used before the promotion reads idle, but, with
// the promotion less than LastUsedDelay ago, the answer says when idle begins to count
// (NotBefore, the promotion plus the delay): before then the gate keeps waiting. A key
// IAM no longer knows cannot be used at all, so its idle counts at once.
func TestInUseIdleNotBeforeTheDelay(t *testing.T) {
	tg := newTarget(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v1, m1 := s.mint(nil)
	signWith(t, tg, m1) // the consumer's last recorded use, before the rotation
	v2, _ := s.mint(&v1)
	promoted := afterASecond()

	u := inUse(t, s.r, v1, &v2, promoted)
	if u.InUse() {
		t.Fatalf("a key last used before the promotion shows in use: %+v", u)
	}
	want := promoted.Add(LastUsedDelay)
	if !u.NotBefore.Equal(want) {
		t.Fatalf("NotBefore = %v, want the promotion plus LastUsedDelay, %v", u.NotBefore, want)
	}
	now := time.Now()
	if u.IdleAt(now) {
		t.Errorf("IdleAt(now) = true inside the reporting delay: the gate would revoke on an answer that is not evidence")
	}
	if !u.IdleAt(want) || u.IdleAt(want.Add(-time.Second)) {
		t.Errorf("IdleAt around NotBefore: want idle from %v on, not before", want)
	}
	if !strings.Contains(u.Checked, "idle counts from "+want.UTC().Format(time.RFC3339)) {
		t.Errorf("Checked = %q; want it to say when idle counts from", u.Checked)
	}

	// A use IAM has recorded is a use whatever the delay.
	signWith(t, tg, m1)
	if u := inUse(t, s.r, v1, &v2, promoted); !u.InUse() || u.IdleAt(want) {
		t.Errorf("after a use of the old key: %+v, want in use", u)
	}
	// Gone: idle at once.
	if err := s.r.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if err := s.r.Purge(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if u := inUse(t, s.r, v1, &v2, promoted); !u.NotBefore.IsZero() || !u.IdleAt(time.Now()) {
		t.Errorf("InUse of a deleted key = %+v, want idle at once", u)
	}
}

// TestInUseRefusesWhatItCannotJudge: no promotion time, a version of another user; and
// the kept version's own key is never counted.
func TestInUseRefusesWhatItCannotJudge(t *testing.T) {
	tg := newTarget(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v1, m1 := s.mint(nil)
	signWith(t, tg, m1)

	_, err := s.r.InUse(t.Context(), rotators.UsageRequest{Version: v1})
	wantErr(t, err, rotators.ErrInvalidConfig, "promotion time")

	other := secret.Version{Number: 9, Metadata: map[string]string{MetadataAccessKeyID: keyID(v1), MetadataUser: "someone-else"}}
	_, err = s.r.InUse(t.Context(), rotators.UsageRequest{Version: other, Since: time.Now().Add(-time.Hour)})
	wantErr(t, err, rotators.ErrInvalidConfig, "someone-else")

	if u := inUse(t, s.r, v1, &v1, time.Now().Add(-time.Hour)); u.InUse() {
		t.Errorf("the kept version's key counted as a use of the old version: %+v", u)
	}
}

// TestInUseKeyOfAnotherUser: a version whose metadata names no user but whose key IAM
// says belongs to another user is refused, not reported for the wrong user.
func TestInUseKeyOfAnotherUser(t *testing.T) {
	tg := newTarget(t)
	stranger := newTarget(t)
	key := stranger.createKey(t, "Active")
	v := secret.Version{Number: 1, Metadata: map[string]string{MetadataAccessKeyID: key}}
	_, err := tg.rotator(t, nil).InUse(t.Context(), rotators.UsageRequest{Version: v, Since: time.Now()})
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), stranger.user) {
		t.Fatalf("InUse of another user's key = %v, want ErrInvalidConfig naming %s", err, stranger.user)
	}
	// Nothing was changed on either user.
	out, err := stranger.setup.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(stranger.user)})
	if err != nil || len(out.AccessKeyMetadata) != 1 || out.AccessKeyMetadata[0].Status != "Active" {
		t.Errorf("the stranger's keys after InUse: %+v, %v", out, err)
	}
}

// TestInUseWithPolicyFile: with IAM enforced, the admin holding exactly iam-policy.json
// may ask, and a use signed (and checked) with the old key is reported.
func TestInUseWithPolicyFile(t *testing.T) {
	e := startEnforced(t)
	tg := e.target(t, policyFromFile(t))
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v1, m1 := s.mint(nil)
	promoted := afterASecond()
	if u := inUse(t, s.r, v1, nil, promoted); u.InUse() {
		t.Fatalf("a key never used shows in use: %+v", u)
	}
	signWith(t, tg, m1)
	if u := inUse(t, s.r, v1, nil, promoted); len(u.Uses) != 1 || u.Uses[0].User != keyID(v1) {
		t.Errorf("InUse after a signed use = %+v, want the key's use", u)
	}
}
