package awsiam

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// sweepFor calls Sweep as the rollback of a Create that gave up does: the version's
// token, what the store knows, the version consumers use and when the Create began.
func sweepFor(t *testing.T, r *Rotator, token string, since time.Time, current *secret.Version, known ...map[string]string) []map[string]string {
	t.Helper()
	removed, err := r.Sweep(t.Context(), rotators.MintRequest{
		SecretID: "test/iam", Token: secret.VersionToken(token), Current: current, Known: known, Since: since,
	})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return removed
}

// A Create that gave up after IAM made the key (the store refused the version) leaves a
// key no version holds. Sweep deletes exactly that key, keeps the current one, reports
// the deleted key's handles only, and a second Sweep finds nothing.
func TestSweepDeletesTheKeyOfAMintThatWasNeverStored(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	curVersion := current(tg.user, cur)
	r := tg.rotator(t, nil)
	since := time.Now()

	lost, err := mintFor(t, r, "rotate/x/run-1", since, curVersion, curVersion.Metadata)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	lostID := lost.Metadata[MetadataAccessKeyID]
	// The store never records lost: the Create gives up and the rollback sweeps.
	removed := sweepFor(t, r, "rotate/x/run-1", since, curVersion, curVersion.Metadata)
	if len(removed) != 1 || removed[0][MetadataAccessKeyID] != lostID || removed[0][MetadataUser] != tg.user || len(removed[0]) != 2 {
		t.Fatalf("Sweep removed %v, want the handles of key %s only", removed, lostID)
	}
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive})

	if again := sweepFor(t, r, "rotate/x/run-1", since, curVersion, curVersion.Metadata); len(again) != 0 {
		t.Fatalf("a second Sweep removed %v, want nothing", again)
	}
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive})
}

// A key unknown to the store but made before the rotation began (by hand, or by a
// rotation that gave up long ago) is not this rotation's: Sweep leaves it and deletes
// only the key minted since. moto reports CreateDate to the microsecond, so waiting out
// orphanMargin puts the older key before the window.
func TestSweepLeavesUnknownKeysOlderThanTheRotation(t *testing.T) {
	tg := newTarget(t)
	older := tg.createKey(t, types.StatusTypeInactive)
	time.Sleep(orphanMargin + 500*time.Millisecond)
	r := tg.rotator(t, nil)
	since := time.Now()

	lost, err := mintFor(t, r, "rotate/x/run-2", since, nil)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	removed := sweepFor(t, r, "rotate/x/run-2", since, nil)
	if len(removed) != 1 || removed[0][MetadataAccessKeyID] != lost.Metadata[MetadataAccessKeyID] {
		t.Fatalf("Sweep removed %v, want only the minted key %s", removed, lost.Metadata[MetadataAccessKeyID])
	}
	tg.wantKeys(t, map[string]types.StatusType{older: types.StatusTypeInactive})
}

// Without Since (a rollback that cannot tell when Create began) Sweep judges no key by
// age and deletes nothing.
func TestSweepWithoutSinceDeletesNothing(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	lost, err := mintFor(t, r, "rotate/x/run-3", time.Time{}, nil)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if removed := sweepFor(t, r, "rotate/x/run-3", time.Time{}, nil); len(removed) != 0 {
		t.Fatalf("Sweep without Since removed %v", removed)
	}
	tg.wantKeys(t, map[string]types.StatusType{lost.Metadata[MetadataAccessKeyID]: types.StatusTypeActive})
}

// A key made after the Create step ended (someone else's, while the rollback waited out
// an outage) is outside the window the rollback gives with Until: Sweep leaves it.
func TestSweepLeavesKeysMadeAfterTheCreateEnded(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, nil)
	since := time.Now()
	lost, err := mintFor(t, r, "rotate/x/run-4", since, nil)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	until := time.Now()
	time.Sleep(orphanMargin + 500*time.Millisecond)
	later := tg.createKey(t, types.StatusTypeActive)

	removed, err := r.Sweep(t.Context(), rotators.MintRequest{SecretID: "test/iam", Token: "rotate/x/run-4", Since: since, Until: until})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(removed) != 1 || removed[0][MetadataAccessKeyID] != lost.Metadata[MetadataAccessKeyID] {
		t.Fatalf("Sweep removed %v, want only the minted key %s", removed, lost.Metadata[MetadataAccessKeyID])
	}
	tg.wantKeys(t, map[string]types.StatusType{later: types.StatusTypeActive})
}
