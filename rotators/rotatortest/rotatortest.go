// Package rotatortest is the conformance suite every rotator kind must pass. It drives a
// rotator only through the rotators.Rotator interface, against a real target, and checks
// the contract the rotation workflow relies on: Generate changes nothing, Apply and Revoke
// are idempotent, Test tells working material from anything else, and revoking the old
// version never breaks the one to keep.
//
// A kind's test calls Run with a Harness whose New gives each subtest a rotator for a
// target of its own. For a Minter the suite also checks that a Mint repeated under the
// same token, with no hint but what the store knows and when the rotation began, leaves
// no credential of a killed earlier Mint working, and, for a rotators.Sweeper, that Sweep
// makes the credential of a Mint the store never got stop working. RunKills goes further: it kills Create
// at random points of a real rotation and counts what the target holds afterwards.
package rotatortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Harness adapts one rotator kind to the suite.
type Harness struct {
	// Name, if set, groups the subtests under a subtest of that name.
	Name string
	// New returns a rotator for a target no other subtest uses (a fresh role, user or
	// key holder), in its initial state. It is called once per subtest and may register
	// cleanups with t.Cleanup.
	New func(t *testing.T) rotators.Rotator
	// SecretID names the secret in requests. Defaults to "rotatortest/secret".
	SecretID secret.ID
	// CallTimeout bounds each call to the rotator. Defaults to one minute.
	CallTimeout time.Duration
	// Settle is how long an eventually consistent target may take to show a change
	// (IAM keys take seconds). Tests that expect a result retry until it shows or Settle
	// has passed. Zero means one attempt: the target is consistent at once.
	Settle time.Duration
	// AfterRotation, if set, runs in the rotation sequence after each round, once next is
	// applied and tested and prev is revoked, for checks only the kind knows about (which
	// role is active, what privileges it has).
	AfterRotation func(t *testing.T, prev, next secret.Version)
	// PublicFields names material fields that are identifiers, not secrets (an access
	// key ID, a certificate), and so may appear in metadata too.
	PublicFields []string
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("rotatortest: Harness.New is nil")
	}
	if h.SecretID == "" {
		h.SecretID = "rotatortest/secret"
	}
	if h.CallTimeout <= 0 {
		h.CallTimeout = time.Minute
	}
	if h.Name != "" {
		t.Run(h.Name, func(t *testing.T) { runAll(t, h) })
		return
	}
	runAll(t, h)
}

func runAll(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		run  func(s *suite)
	}{
		{"CreateIsSafeToRepeat", createIsSafeToRepeat},
		{"MintFindsWhatAKilledMintLeft", mintFindsWhatAKilledMintLeft},
		{"SweepRemovesWhatAFailedMintLeft", sweepRemovesWhatAFailedMintLeft},
		{"ApplyThenTest", applyThenTest},
		{"ApplyIsIdempotent", applyIsIdempotent},
		{"WrongMaterialIsRejected", wrongMaterialIsRejected},
		{"RevokeDisables", revokeDisables},
		{"RevokeIsIdempotent", revokeIsIdempotent},
		{"RevokeNeverApplied", revokeNeverApplied},
		{"RevokeKeepsKeep", revokeKeepsKeep},
		{"RotationSequence", rotationSequence},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &suite{t: t, h: h, r: h.New(t)}
			if s.r == nil {
				t.Fatal("Harness.New returned nil")
			}
			c.run(s)
		})
	}
}

func applyThenTest(s *suite) {
	v, m := s.generate(nil)
	s.apply(v, m)
	s.wantAccepted("Test after Apply", v, m)
}

func applyIsIdempotent(s *suite) {
	v, m := s.generate(nil)
	s.apply(v, m)
	s.apply(v, m)
	s.wantAccepted("Test after applying twice", v, m)
}

// Test of a version with material it was not given must fail with ErrCredentialRejected.
func wrongMaterialIsRejected(s *suite) {
	v, m := s.generate(nil)
	s.apply(v, m)
	_, other := s.generate(nil)
	s.wantRejected("Test with material from another Generate", v, other)
	s.wantAccepted("Test with the right material", v, m)
}

func revokeDisables(s *suite) {
	v, m := s.generate(nil)
	s.apply(v, m)
	s.wantAccepted("Test after Apply", v, m)
	s.revoke(v, nil)
	s.wantRejected("Test after Revoke", v, m)
}

func revokeIsIdempotent(s *suite) {
	v, m := s.generate(nil)
	s.apply(v, m)
	s.revoke(v, nil)
	s.revoke(v, nil)
	s.wantRejected("Test after revoking twice", v, m)
}

// Revoking a version that was generated but never applied is success, and does not stop
// a later version from working.
func revokeNeverApplied(s *suite) {
	v, _ := s.generate(nil)
	s.revoke(v, nil)
	s.revoke(v, nil)
	next, m := s.generate(nil)
	s.apply(next, m)
	s.wantAccepted("Test of a new version after revoking one never applied", next, m)
}

// Revoking the previous version with Keep set leaves Keep working, even twice.
func revokeKeepsKeep(s *suite) {
	prev, pm := s.generate(nil)
	s.apply(prev, pm)
	next, nm := s.generate(&prev)
	s.apply(next, nm)
	s.wantAccepted("Test of the new version", next, nm)
	s.revoke(prev, &next)
	s.wantAccepted("Test of Keep after Revoke", next, nm)
	s.wantRejected("Test of the revoked version", prev, pm)
	s.revoke(prev, &next)
	s.wantAccepted("Test of Keep after a second Revoke", next, nm)
}

// Three rounds of the workflow's sequence: Generate from the current version, Apply,
// Test, Revoke the previous one keeping the new one.
func rotationSequence(s *suite) {
	prev, pm := s.generate(nil)
	s.apply(prev, pm)
	s.wantAccepted("Test of the first version", prev, pm)
	for round := 1; round <= 3; round++ {
		next, nm := s.generate(&prev)
		s.apply(next, nm)
		s.wantAccepted(fmt.Sprintf("round %d: Test of the new version", round), next, nm)
		s.revoke(prev, &next)
		s.wantAccepted(fmt.Sprintf("round %d: Test of the new version after Revoke", round), next, nm)
		s.wantRejected(fmt.Sprintf("round %d: Test of the revoked version", round), prev, pm)
		if s.h.AfterRotation != nil {
			s.h.AfterRotation(s.t, prev, next)
		}
		if s.t.Failed() {
			return
		}
		prev, pm = next, nm
	}
}

// suite is the state of one subtest: its rotator, the versions made so far and all the
// material generated, which no error may contain.
type suite struct {
	t    *testing.T
	h    Harness
	r    rotators.Rotator
	n    int
	made []secret.Material
}

func (s *suite) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.t.Context(), s.h.CallTimeout)
}

// generate calls Generate (or Mint, for a Minter) and builds the version the store would
// record.
func (s *suite) generate(current *secret.Version) (secret.Version, secret.Material) {
	s.t.Helper()
	v, m, _ := s.make(current, nil)
	return v, m
}

// make is generate with the version's token chosen by the caller (for a repeated Mint)
// and the abandoned credentials of an earlier Mint. It returns what Mint reported through
// Minted, too.
func (s *suite) make(current *secret.Version, again *mintAgain) (secret.Version, secret.Material, []map[string]string) {
	s.t.Helper()
	s.n++
	token := secret.VersionToken(fmt.Sprintf("test/%d", s.n))
	var (
		abandoned []map[string]string
		since     time.Time
	)
	if again != nil {
		token, abandoned, since = again.token, again.abandoned, again.since
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var (
		g      rotators.Generated
		err    error
		call   string
		minted []map[string]string
	)
	switch r := s.r.(type) {
	case rotators.Generator:
		call = "Generate"
		g, err = r.Generate(ctx, rotators.GenerateRequest{SecretID: s.h.SecretID, Token: token, Current: current})
	case rotators.Minter:
		call = "Mint"
		g, err = r.Mint(ctx, rotators.MintRequest{
			SecretID: s.h.SecretID, Token: token, Current: current, Abandoned: abandoned, Since: since,
			Minted: func(md map[string]string) { minted = append(minted, md) },
		})
	default:
		s.t.Fatalf("rotator %T is neither a rotators.Generator nor a rotators.Minter", s.r)
	}
	s.checkLeak(call, err)
	if err != nil {
		s.t.Fatalf("%s %s: %v", call, token, err)
	}
	if len(g.Material) == 0 {
		s.t.Fatalf("%s %s: no material", call, token)
	}
	for field, value := range g.Material {
		if value.IsZero() {
			s.t.Fatalf("%s %s: material field %q is empty", call, token, field)
		}
	}
	if len(g.Metadata) == 0 {
		s.t.Fatalf("%s %s: no metadata", call, token)
	}
	s.made = append(s.made, g.Material)
	s.checkMetadata(call, g.Metadata)
	if _, ok := s.r.(rotators.Minter); ok && len(minted) == 0 {
		s.t.Fatalf("Mint %s: never called MintRequest.Minted, so an interrupted step could not clean up", token)
	}
	for _, md := range minted {
		s.checkMetadata("Minted", md)
	}
	return secret.Version{
		SecretID:  s.h.SecretID,
		Token:     token,
		Number:    s.n,
		Stages:    []secret.Stage{secret.StagePending},
		CreatedAt: time.Now(),
		Metadata:  g.Metadata,
	}, g.Material, minted
}

// checkMetadata fails the test if metadata carries any material made so far.
func (s *suite) checkMetadata(call string, md map[string]string) {
	s.t.Helper()
	for k, v := range md {
		for _, m := range s.made {
			for field, value := range m {
				if slices.Contains(s.h.PublicFields, field) {
					continue
				}
				if r := value.Reveal(); r != "" && (strings.Contains(v, r) || strings.Contains(k, r)) {
					s.t.Errorf("%s metadata %q contains material field %q", call, k, field)
				}
			}
		}
	}
}

func (s *suite) apply(v secret.Version, m secret.Material) {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.r.Apply(ctx, rotators.ApplyRequest{Version: v, Material: m})
	s.checkLeak("Apply", err)
	if err != nil {
		s.t.Fatalf("Apply %s: %v", v.Token, err)
	}
}

func (s *suite) revoke(v secret.Version, keep *secret.Version) {
	s.t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.r.Revoke(ctx, rotators.RevokeRequest{Version: v, Keep: keep})
	s.checkLeak("Revoke", err)
	if err != nil {
		s.t.Fatalf("Revoke %s: %v", v.Token, err)
	}
}

func (s *suite) test(v secret.Version, m secret.Material) error {
	ctx, cancel := s.ctx()
	defer cancel()
	err := s.r.Test(ctx, rotators.TestRequest{Version: v, Material: m})
	s.checkLeak("Test", err)
	return err
}

// wantAccepted expects Test to succeed, within Settle.
func (s *suite) wantAccepted(what string, v secret.Version, m secret.Material) {
	s.t.Helper()
	var last error
	if !s.eventually(func() bool { last = s.test(v, m); return last == nil }) {
		s.t.Fatalf("%s (%s): %v", what, v.Token, last)
	}
}

// wantRejected expects Test to fail with ErrCredentialRejected, within Settle.
func (s *suite) wantRejected(what string, v secret.Version, m secret.Material) {
	s.t.Helper()
	var last error
	if s.eventually(func() bool { last = s.test(v, m); return errors.Is(last, rotators.ErrCredentialRejected) }) {
		return
	}
	if last == nil {
		s.t.Fatalf("%s (%s): Test succeeded, want an error wrapping ErrCredentialRejected", what, v.Token)
	}
	s.t.Fatalf("%s (%s): Test returned %v, want an error wrapping ErrCredentialRejected", what, v.Token, last)
}

// eventually retries check until it holds or Settle has passed, and reports whether it
// held.
func (s *suite) eventually(check func() bool) bool {
	deadline := time.Now().Add(s.h.Settle)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		if check() {
			return true
		}
		if time.Now().Add(delay).After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// checkLeak fails the test if an error carries any generated material.
func (s *suite) checkLeak(call string, err error) {
	s.t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v | %+v | %#v", err, err, err)
	for _, m := range s.made {
		for field, value := range m {
			if slices.Contains(s.h.PublicFields, field) {
				continue
			}
			if v := value.Reveal(); v != "" && strings.Contains(text, v) {
				s.t.Errorf("%s returned an error containing material field %q", call, field)
			}
		}
	}
}

// sameMaterial reports whether two materials have the same fields with the same values.
func sameMaterial(a, b secret.Material) bool {
	if len(a) != len(b) {
		return false
	}
	for field, value := range a {
		if other, ok := b[field]; !ok || !other.Equal(value) {
			return false
		}
	}
	return true
}
