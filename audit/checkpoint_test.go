package audit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

// TestForgedCheckpointDoesNotStopSigning: a checkpoint signed by another key that claims
// the current heads is not taken as "already signed" by the real signer, which signs
// them anyway; verify reports the forgery and trusts the real one.
func TestForgedCheckpointDoesNotStopSigning(t *testing.T) {
	ctx := t.Context()
	s, err := audit.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, audittest.Record("app-db", "e1", time.Now())); err != nil {
		t.Fatal(err)
	}
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, forgerKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := audit.NewSigner(forgerKey).Sign(time.Now(), heads)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheckpoint(ctx, forged); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := audit.NewSigner(key)
	if _, signed, err := (audit.Checkpointer{Sink: s, Signer: signer}).Checkpoint(ctx, time.Now()); err != nil || !signed {
		t.Fatalf("the real signer did not sign past a forged checkpoint: signed=%v err=%v", signed, err)
	}
	recs, _ := s.Records(ctx, audit.Filter{})
	cps, _ := s.Checkpoints(ctx)
	rep := audit.Verify(recs, cps, []ed25519.PublicKey{signer.Public()}, nil)
	if rep.OK() || rep.Trusted != 1 || rep.Uncovered != 0 {
		t.Fatalf("verify: ok=%v trusted=%d uncovered=%d problems=%v; want the forgery reported and the real checkpoint trusted", rep.OK(), rep.Trusted, rep.Uncovered, rep.Problems)
	}
}
