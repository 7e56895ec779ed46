package rotatortest

import (
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// createIsSafeToRepeat checks the first half of Create, which differs by kind: a
// Generator's Generate changes nothing, a Minter's repeated Mint leaves no stray credential.
func createIsSafeToRepeat(s *suite) {
	if _, ok := s.r.(rotators.Minter); ok {
		mintAgainCleansUp(s)
		return
	}
	generateChangesNothing(s)
}

// Generate gives material and metadata, and the target does not accept the material
// until Apply. A second Generate gives different material.
func generateChangesNothing(s *suite) {
	v1, m1 := s.generate(nil)
	s.wantRejected("Test before Apply", v1, m1)
	_, m2 := s.generate(nil)
	if sameMaterial(m1, m2) {
		s.t.Error("two calls to Generate gave the same material")
	}
	s.wantRejected("Test before Apply, after a second Generate", v1, m1)
}

// A Mint repeated under the same token with the first credential as abandoned (the
// step was interrupted before the store got it) either returns the same credential again
// (a target with idempotency keys) or makes the abandoned one stop working. Either way
// exactly one credential of that token works afterwards.
func mintAgainCleansUp(s *suite) {
	v1, m1, minted := s.make(nil, nil)
	again, m2, _ := s.make(nil, &mintAgain{token: v1.Token, abandoned: minted})
	s.apply(again, m2)
	s.wantAccepted("Test of the credential of the repeated Mint", again, m2)
	if !sameMaterial(m1, m2) {
		s.wantRejected("Test of the abandoned credential", v1, m1)
	}
}

// A Mint killed after the target made the credential and before anyone heard of it
// (no Minted call reached the heartbeat, the store never got it) leaves a credential
// only the target knows. The repeated Mint under the same token, given only what the
// store knows (nothing yet) and when the rotation began, returns that same credential or
// makes it stop working. A Generator has nothing to mint, so the case is skipped for it.
func mintFindsWhatAKilledMintLeft(s *suite) {
	if _, ok := s.r.(rotators.Minter); !ok {
		s.t.Skip("not a Minter: Generate changes nothing on the target (CreateIsSafeToRepeat)")
	}
	since := time.Now()
	v1, m1, _ := s.make(nil, &mintAgain{token: "rotatortest/killed", since: since})
	// The step dies here: the heartbeat and the store never hear of v1.
	again, m2, _ := s.make(nil, &mintAgain{token: v1.Token, since: since})
	s.apply(again, m2)
	s.wantAccepted("Test of the credential of the repeated Mint", again, m2)
	if !sameMaterial(m1, m2) {
		s.wantRejected("Test of the credential the killed Mint left", v1, m1)
	}
}

// mintAgain repeats a Mint under an earlier token, as a retried step does.
type mintAgain struct {
	token     secret.VersionToken
	abandoned []map[string]string
	// since is when the rotation began (MintRequest.Since); zero for unknown.
	since time.Time
}
