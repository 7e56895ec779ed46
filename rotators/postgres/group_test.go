package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// TestRevokeGroup revokes the versions of three secrets on one server in one call, as an
// incident's containment does: every password is refused afterwards, an open session of
// a revoked role is ended, a version whose metadata names another secret's role is
// refused by its own rotator without holding up the others, and a second call is a no-op.
func TestRevokeGroup(t *testing.T) {
	pools := NewPools(0)
	t.Cleanup(pools.Close)
	type leakedVersion struct {
		v secret.Version
		m secret.Material
	}
	var (
		members []rotators.GroupMember
		leaked  []leakedVersion
		rots    []*Rotator
	)
	admin, adminPassword := createAdmin(t, "CREATEROLE", "pg_signal_backend", "pg_read_all_stats")
	for i := range 3 {
		cfg := withAdmin(t, newConfig(t, StrategyAlternating), admin, adminPassword)
		cfg.Pools = pools
		r := mustNew(t, cfg)
		rots = append(rots, r)
		s := &step{t: t, r: r}
		v1, m1 := s.rotate(nil)
		versions := []leakedVersion{{v1, m1}}
		if i == 0 { // a secret in its grace period: previous and current both log in
			v2, m2 := s.rotate(&v1)
			versions = append(versions, leakedVersion{v2, m2})
		}
		for _, lv := range versions {
			members = append(members, rotators.GroupMember{Rotator: r, Request: rotators.RevokeRequest{Version: lv.v, EndSessions: true}})
			leaked = append(leaked, lv)
		}
	}
	// A version of the second secret whose metadata names the first secret's role.
	forged := members[2].Request.Version
	forged.Metadata = map[string]string{MetadataRole: leaked[0].v.Metadata[MetadataRole]}
	members = append(members, rotators.GroupMember{Rotator: rots[1], Request: rotators.RevokeRequest{Version: forged}})

	// An open session of the first secret's current role, which must be ended.
	held := connectDSN(t, cluster.DSN(leaked[1].v.Metadata[MetadataRole], leaked[1].m.Get(FieldPassword).Reveal(), "postgres"))

	outcomes := rots[2].RevokeGroup(t.Context(), members)
	if len(outcomes) != len(members) {
		t.Fatalf("RevokeGroup returned %d outcomes for %d members", len(outcomes), len(members))
	}
	for i, o := range outcomes[:len(outcomes)-1] {
		if o.Err != nil {
			t.Errorf("member %d: %v", i, o.Err)
		}
	}
	if err := outcomes[len(outcomes)-1].Err; !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("forged member: %v, want ErrInvalidConfig", err)
	}
	// The held session is reported ended, for its version only.
	heldRole := leaked[1].v.Metadata[MetadataRole]
	if ended := outcomes[1].Ended; len(ended) != 1 || ended[0].User != heldRole || ended[0].Since.IsZero() {
		t.Errorf("ended sessions of member 1 (role %s): %+v, want the one held session with its start", heldRole, ended)
	}
	for i, o := range outcomes {
		if i != 1 && len(o.Ended) > 0 {
			t.Errorf("member %d reports ended sessions %+v, want none", i, o.Ended)
		}
	}
	for _, lv := range leaked {
		err := tryLogin(t, lv.v.Metadata[MetadataRole], lv.m.Get(FieldPassword).Reveal())
		if !refusedLogin(err) {
			t.Errorf("version %s (role %s) after RevokeGroup: login %v, want refused", lv.v.Token, lv.v.Metadata[MetadataRole], err)
		}
	}
	var one int
	if err := held.QueryRow(t.Context(), "SELECT 1").Scan(&one); err == nil {
		t.Error("the open session of a revoked role still answers")
	}

	for i, o := range rots[0].RevokeGroup(t.Context(), members[:len(members)-1]) {
		if o.Err != nil || len(o.Ended) > 0 {
			t.Errorf("second RevokeGroup, member %d: %v, ended %v; want a no-op", i, o.Err, o.Ended)
		}
	}
}

// TestGroupKey checks that rotators group by server and admin credential.
func TestGroupKey(t *testing.T) {
	a, b := newConfig(t, StrategyAlternating), newConfig(t, StrategySingle)
	if mustNew(t, a).GroupKey() != mustNew(t, b).GroupKey() {
		t.Error("two secrets on one server with one admin have different group keys")
	}
	other := withOwnAdmin(t, newConfig(t, StrategyAlternating))
	if mustNew(t, a).GroupKey() == mustNew(t, other).GroupKey() {
		t.Error("rotators with different admins share a group key")
	}
	// A member with another admin is refused, not revoked with the receiver's access.
	s := &step{t: t, r: mustNew(t, other)}
	v, _ := s.rotate(nil)
	outcomes := mustNew(t, a).RevokeGroup(t.Context(), []rotators.GroupMember{{Rotator: s.r, Request: rotators.RevokeRequest{Version: v}}})
	if len(outcomes) != 1 || !errors.Is(outcomes[0].Err, rotators.ErrInvalidConfig) {
		t.Errorf("a member with another admin: %v, want ErrInvalidConfig", outcomes)
	}
}

// refusedLogin reports a login the server refused: a wrong password or a role that may
// not log in.
func refusedLogin(err error) bool {
	code := sqlstate(err)
	return code == sqlstateInvalidPassword || code == sqlstateInvalidAuthorization
}

// TestRevokeGroupOneRoleRefused: a role the admin may not alter (here a superuser) fails
// only its own member; the other roles of its chunk are still revoked.
func TestRevokeGroupOneRoleRefused(t *testing.T) {
	admin, adminPassword := createAdmin(t, "CREATEROLE", "pg_signal_backend", "pg_read_all_stats")
	var members []rotators.GroupMember
	var good []*step
	var goodVersions []secret.Version
	var goodMaterial []secret.Material
	for range 2 {
		cfg := withAdmin(t, newConfig(t, StrategyAlternating), admin, adminPassword)
		s := &step{t: t, r: mustNew(t, cfg)}
		v, m := s.rotate(nil)
		good = append(good, s)
		goodVersions, goodMaterial = append(goodVersions, v), append(goodMaterial, m)
	}
	super := unique("super")
	exec(t, superConn(t), fmt.Sprintf("CREATE ROLE %s WITH SUPERUSER NOLOGIN", ident(super)))
	badCfg := newConfig(t, StrategySingle)
	badCfg.Role = super
	badCfg = withAdmin(t, badCfg, admin, adminPassword)
	bad := mustNew(t, badCfg)
	badVersion := secret.Version{SecretID: "test/super", Token: "super/1", Number: 1, Metadata: map[string]string{MetadataRole: super}}

	members = append(members,
		rotators.GroupMember{Rotator: good[0].r, Request: rotators.RevokeRequest{Version: goodVersions[0], EndSessions: true}},
		rotators.GroupMember{Rotator: bad, Request: rotators.RevokeRequest{Version: badVersion, EndSessions: true}},
		rotators.GroupMember{Rotator: good[1].r, Request: rotators.RevokeRequest{Version: goodVersions[1], EndSessions: true}},
	)
	outcomes := good[0].r.RevokeGroup(t.Context(), members)
	if len(outcomes) != 3 {
		t.Fatalf("%d outcomes for 3 members", len(outcomes))
	}
	if outcomes[0].Err != nil || outcomes[2].Err != nil {
		t.Errorf("the revocable members: %v, %v; want both revoked", outcomes[0].Err, outcomes[2].Err)
	}
	if !errors.Is(outcomes[1].Err, rotators.ErrPermissionDenied) {
		t.Errorf("the superuser member: %v, want ErrPermissionDenied", outcomes[1].Err)
	}
	for i, v := range goodVersions {
		if err := tryLogin(t, v.Metadata[MetadataRole], goodMaterial[i].Get(FieldPassword).Reveal()); !refusedLogin(err) {
			t.Errorf("role %s after the group revoke: %v, want refused", v.Metadata[MetadataRole], err)
		}
	}
}
