package awsiam

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// mintFor calls Mint for token as a retried Create step would, with what the store knows
// and when the rotation began, and no heartbeat hint (Abandoned is empty).
func mintFor(t *testing.T, r *Rotator, token string, since time.Time, current *secret.Version, known ...map[string]string) (rotators.Generated, error) {
	t.Helper()
	return r.Mint(t.Context(), rotators.MintRequest{
		SecretID: "test/iam", Token: secret.VersionToken(token), Current: current,
		Known: known, Since: since,
	})
}

// A Create killed after IAM made the key and before the store (or a heartbeat) got it
// leaves a key nobody knows of. The retry finds it on the target from the store's
// versions and the rotation's start, and deletes it: the user ends with the current key
// and the new one, not three keys (IAM refuses a third, which rolled back every later
// rotation of the user).
func TestMintDeletesTheKeyOfAKilledAttemptWithoutAnyHint(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	curVersion := current(tg.user, cur)
	r := tg.rotator(t, nil)
	since := time.Now()

	lost, err := mintFor(t, r, "rotate/x/run-1", since, curVersion, curVersion.Metadata)
	if err != nil {
		t.Fatalf("first Mint: %v", err)
	}
	// The step dies here: the store never records lost, Minted was never heard of.
	g, err := mintFor(t, r, "rotate/x/run-1", since, curVersion, curVersion.Metadata)
	if err != nil {
		t.Fatalf("Mint of the retried step: %v", err)
	}
	newID := g.Metadata[MetadataAccessKeyID]
	if newID == lost.Metadata[MetadataAccessKeyID] {
		t.Fatal("the retry returned the lost key again")
	}
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive, newID: types.StatusTypeActive})
}

// Keys the store holds are never orphans, even when new and unknown to Current (a
// pending version of an earlier rotation, an inactive previous key).
func TestMintKeepsKeysTheStoreKnows(t *testing.T) {
	tg := newTarget(t)
	since := time.Now()
	prev := tg.createKey(t, types.StatusTypeInactive)
	r := tg.rotator(t, nil)
	known := map[string]string{MetadataAccessKeyID: prev, MetadataUser: tg.user}
	g, err := mintFor(t, r, "rotate/x/run-2", since, nil, known)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	tg.wantKeys(t, map[string]types.StatusType{prev: types.StatusTypeInactive, g.Metadata[MetadataAccessKeyID]: types.StatusTypeActive})
}

// A key unknown to the store but older than the rotation (made by hand, or by a rotation
// that gave up) is not this rotation's to delete: Mint leaves it, and with two keys
// refuses as before.
func TestMintLeavesUnknownKeysOlderThanTheRotation(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	other := tg.createKey(t, types.StatusTypeActive)
	before := tg.keys(t)
	curVersion := current(tg.user, cur)
	r := tg.rotator(t, nil)
	// As if the rotation began a minute after both keys were made.
	_, err := mintFor(t, r, "rotate/x/run-3", time.Now().Add(time.Minute), curVersion, curVersion.Metadata)
	wantErr(t, err, rotators.ErrInvalidConfig, other, "never deletes an active key")
	tg.wantKeys(t, before)
}

func TestOrphansMargin(t *testing.T) {
	since := time.Date(2026, 12, 3, 12, 0, 0, 900_000_000, time.UTC)
	at := func(d time.Duration) *time.Time { v := since.Add(d).Truncate(time.Second); return &v }
	id := func(s string) *string { return &s }
	keys := []types.AccessKeyMetadata{
		{AccessKeyId: id("AKIASAMESECOND"), CreateDate: at(0)},          // made in the same second, reported earlier
		{AccessKeyId: id("AKIAAFTER"), CreateDate: at(3 * time.Second)}, // made during the rotation
		{AccessKeyId: id("AKIAOLD"), CreateDate: at(-time.Minute)},      // made long before
		{AccessKeyId: id("AKIACURRENT"), CreateDate: at(time.Second)},   // the current key
		{AccessKeyId: id("AKIAKNOWN"), CreateDate: at(2 * time.Second)}, // a stored version's
		{AccessKeyId: id("AKIAHINT"), CreateDate: at(-2 * time.Hour)},   // named by the heartbeat
		{AccessKeyId: id("AKIANODATE")},                                 // no CreateDate: not judged by age
	}
	req := rotators.MintRequest{
		Since:     since,
		Known:     []map[string]string{{MetadataAccessKeyID: "AKIAKNOWN"}, {MetadataAccessKeyID: "AKIACURRENT"}},
		Abandoned: []map[string]string{{MetadataAccessKeyID: "AKIAHINT"}, {MetadataAccessKeyID: "AKIAKNOWN"}},
	}
	got := orphans(keys, req, "AKIACURRENT")
	want := []string{"AKIASAMESECOND", "AKIAAFTER", "AKIAHINT"}
	if len(got) != len(want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("orphans %v, want %v", got, want)
		}
	}
	req.Since = time.Time{}
	if got := orphans(keys, req, "AKIACURRENT"); len(got) != 1 || got[0] != "AKIAHINT" {
		t.Fatalf("without Since: orphans %v, want only the hinted key", got)
	}
}
