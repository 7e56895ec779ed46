package awsiam

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// current records a key made by hand as the version consumers use now.
func current(user, id string) *secret.Version {
	return &secret.Version{SecretID: "test/iam", Token: "adopted", Number: 1,
		Metadata: map[string]string{MetadataAccessKeyID: id, MetadataUser: user}}
}

func TestMintGivesAKeyPairAndReportsItFirst(t *testing.T) {
	tg := newTarget(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, m := s.mint(nil)
	id := m.Get(FieldAccessKeyID).Reveal()
	if id == "" || m.Get(FieldSecretAccessKey).IsZero() || len(m) != 2 {
		t.Fatalf("material has fields %d, want access_key_id and secret_access_key", len(m))
	}
	if keyID(v) != id || v.Metadata[MetadataUser] != tg.user || len(v.Metadata) != 2 {
		t.Fatalf("metadata %v, want access_key_id %s and user %s", v.Metadata, id, tg.user)
	}
	tg.wantKeys(t, map[string]types.StatusType{id: types.StatusTypeActive})
	if err := s.test(v, m); err != nil {
		t.Fatalf("Test of the minted key: %v", err)
	}
}

func TestMintStopsAtAnInactiveKeyWithoutDeleteInactive(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	old := tg.createKey(t, types.StatusTypeInactive)
	before := tg.keys(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}

	_, _, err := s.tryMint(current(tg.user, cur))
	wantErr(t, err, rotators.ErrInvalidConfig, old, "Inactive", "delete_inactive: true", "delete-access-key", tg.user)
	tg.wantKeys(t, before)
}

func TestMintDeletesAnInactiveKeyWithDeleteInactive(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	tg.createKey(t, types.StatusTypeInactive)
	s := &steps{t: t, r: tg.rotator(t, func(c *Config) { c.DeleteInactive = true })}

	v, _ := s.mint(current(tg.user, cur))
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive, keyID(v): types.StatusTypeActive})
}

func TestMintNeverDeletesAnActiveKey(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	other := tg.createKey(t, types.StatusTypeActive)
	before := tg.keys(t)
	// DeleteInactive does not reach active keys.
	s := &steps{t: t, r: tg.rotator(t, func(c *Config) { c.DeleteInactive = true })}

	_, _, err := s.tryMint(current(tg.user, cur))
	wantErr(t, err, rotators.ErrInvalidConfig, other, "Active", cur, "never deletes an active key")
	tg.wantKeys(t, before)
}

// Without a recorded current version (an adopted secret), neither key is known to be in
// use: the error names both, and an inactive one may still make room.
func TestMintWithoutCurrentVersion(t *testing.T) {
	tg := newTarget(t)
	a := tg.createKey(t, types.StatusTypeActive)
	b := tg.createKey(t, types.StatusTypeActive)
	s := &steps{t: t, r: tg.rotator(t, func(c *Config) { c.DeleteInactive = true })}
	_, _, err := s.tryMint(nil)
	wantErr(t, err, rotators.ErrInvalidConfig, a, b, "no key recorded as the current version")

	tg.setStatus(t, b, types.StatusTypeInactive)
	v, _ := s.mint(nil)
	tg.wantKeys(t, map[string]types.StatusType{a: types.StatusTypeActive, keyID(v): types.StatusTypeActive})
}

// Keys an interrupted Mint left are deleted before the limit is checked, so they never
// block the retry, even without DeleteInactive and even when active.
func TestMintDeletesAbandonedKeysFirst(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	abandoned := tg.createKey(t, types.StatusTypeActive)
	s := &steps{t: t, r: tg.rotator(t, nil)}

	v, _ := s.mint(current(tg.user, cur),
		map[string]string{MetadataAccessKeyID: abandoned, MetadataUser: tg.user},
		map[string]string{MetadataAccessKeyID: "AKIAGONEALREADY00000", MetadataUser: tg.user}, // already deleted: skipped
	)
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive, keyID(v): types.StatusTypeActive})
}

// The current version's key is never deleted, even if named as abandoned.
func TestMintKeepsTheCurrentKeyEvenIfNamedAbandoned(t *testing.T) {
	tg := newTarget(t)
	cur := tg.createKey(t, types.StatusTypeActive)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, _ := s.mint(current(tg.user, cur), map[string]string{MetadataAccessKeyID: cur})
	tg.wantKeys(t, map[string]types.StatusType{cur: types.StatusTypeActive, keyID(v): types.StatusTypeActive})
}

// An abandoned key is only ever looked for among the user's own keys.
func TestMintLeavesKeysOfOtherUsers(t *testing.T) {
	tg := newTarget(t)
	other := newTarget(t)
	otherKey := other.createKey(t, types.StatusTypeActive)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, _ := s.mint(nil, map[string]string{MetadataAccessKeyID: otherKey})
	other.wantKeys(t, map[string]types.StatusType{otherKey: types.StatusTypeActive})
	tg.wantKeys(t, map[string]types.StatusType{keyID(v): types.StatusTypeActive})
}

func TestMintForAMissingUser(t *testing.T) {
	tg := newTarget(t)
	tg.user = uniqueUser("missing")
	s := &steps{t: t, r: tg.rotator(t, nil)}
	_, _, err := s.tryMint(nil)
	wantErr(t, err, rotators.ErrInvalidConfig, tg.user, "does not exist")
}
