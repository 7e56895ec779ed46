package rotatortest

import (
	"time"

	"github.com/keyturn/keyturn/rotators"
)

// A Mint whose credential the store never got (the Create gave up after the target
// minted: its retries ran out, or the store refused the write) is found again by Sweep,
// given only the token, what the store knows and when the rotation began, as a rollback
// asks: the credential stops working, Sweep reports it by handles that hold no material,
// the version the store holds goes on working, and a second Sweep removes nothing. The
// case is skipped for a rotator that is not a rotators.Sweeper.
//
// Sweep may report other credentials too: a kind that finds them by names and age
// (vaultpki) takes any of its names signed since Since for this rotation's. Each kind's
// own tests check that it removes exactly the lost one on a target nothing else uses.
func sweepRemovesWhatAFailedMintLeft(s *suite) {
	sw, ok := s.r.(rotators.Sweeper)
	if !ok {
		s.t.Skip("not a rotators.Sweeper")
	}
	since := time.Now()
	kept, km := s.generate(nil)
	s.apply(kept, km)
	// The first attempt of a Create has no Since; this one mints and then gives up.
	lost, lm, _ := s.make(&kept, &mintAgain{token: "rotatortest/gave-up"})

	sweep := func() []map[string]string {
		s.t.Helper()
		ctx, cancel := s.ctx()
		defer cancel()
		removed, err := sw.Sweep(ctx, rotators.MintRequest{
			SecretID: s.h.SecretID, Token: lost.Token, Current: &kept,
			Known: []map[string]string{kept.Metadata}, Since: since,
		})
		s.checkLeak("Sweep", err)
		if err != nil {
			s.t.Fatalf("Sweep %s: %v", lost.Token, err)
		}
		for _, md := range removed {
			s.checkMetadata("Sweep", md)
			if handleOf(kept.Metadata, md) {
				s.t.Errorf("Sweep removed %v, the credential of the version the store holds", md)
			}
		}
		return removed
	}
	removed := sweep()
	found := false
	for _, md := range removed {
		found = found || handleOf(lost.Metadata, md)
	}
	if !found {
		s.t.Errorf("Sweep removed %v, none of them the credential of the Mint the store never got", removed)
	}
	s.wantRejected("Test of the swept credential", lost, lm)
	s.wantAccepted("Test of the stored version after Sweep", kept, km)
	if again := sweep(); len(again) != 0 {
		s.t.Errorf("a second Sweep removed %v, want nothing", again)
	}
	s.wantAccepted("Test of the stored version after a second Sweep", kept, km)
}

// handleOf reports whether handle names the credential whose metadata is md: every
// field of handle (a key ID, a serial) has the same value in md.
func handleOf(md, handle map[string]string) bool {
	for k, v := range handle {
		if md[k] != v {
			return false
		}
	}
	return len(handle) > 0
}
