package localca

import (
	"errors"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// A Create that gave up after the CA signed (the store refused the version) leaves a
// valid certificate that no version names. Sweep, on another Rotator as on a worker that
// restarted, finds it in the issuance log under the version's token and puts exactly it
// on the CRL: the current version's certificate and those of other tokens stay valid. It
// reports the serial only, and a second Sweep revokes and reports nothing.
func TestSweepRevokesWhatAMintThatWasNeverStoredSigned(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	cur, cm, _ := mint(t, r, "rotate/x/run-0", nil)
	bystander, bm, _ := mint(t, r, "rotate/y/run-1", nil)
	lost, lm, _ := mint(t, r, "rotate/x/run-1", nil)
	// The store never records lost: the Create gives up and the rollback sweeps.
	sweeper := e.rotator(t, request())
	req := rotators.MintRequest{SecretID: "test/cert", Token: "rotate/x/run-1", Current: &cur, Known: []map[string]string{cur.Metadata}}
	removed, err := sweeper.Sweep(t.Context(), req)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	want := lost.Metadata[certs.MetadataSerial]
	if len(removed) != 1 || removed[0][certs.MetadataSerial] != want || len(removed[0]) != 1 {
		t.Fatalf("Sweep removed %v, want serial %s only", removed, want)
	}
	if !e.lists(t, want) {
		t.Fatal("the swept certificate is not on the CRL")
	}
	if err := testVersion(t, r, lost, lm); !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test of the swept certificate: %v, want ErrCredentialRejected", err)
	}
	for name, v := range map[string]struct {
		v secret.Version
		m secret.Material
	}{"current": {cur, cm}, "other token's": {bystander, bm}} {
		if err := testVersion(t, r, v.v, v.m); err != nil {
			t.Errorf("Test of the %s certificate after the sweep: %v", name, err)
		}
	}

	again, err := sweeper.Sweep(t.Context(), req)
	if err != nil || len(again) != 0 {
		t.Fatalf("a second Sweep: removed %v, %v; want nothing", again, err)
	}
}
