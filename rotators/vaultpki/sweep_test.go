package vaultpki

import (
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// A Create that gave up after Vault signed (the store refused the version) leaves a
// valid certificate off the CRL that no version names. Sweep, on a fresh Rotator with
// the least-privilege policy (as on a worker that restarted), finds it among the mount's
// certificates and revokes exactly it: the current version's, another name's and one
// signed before the rotation began stay valid. It reports the serial only, and a second
// Sweep revokes and reports nothing.
func TestSweepRevokesWhatAMintThatWasNeverStoredSigned(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	r := p.rotator(role, request(), nil)
	other := request()
	other.CommonName, other.DNSNames = "other."+testDomain, nil

	older := mintFor(t, r, "rotate/x/run-older", time.Time{})
	// Its NotBefore is backdated by vaultBackdate, the window of a rotation reaches
	// vaultBackdate + orphanMargin back: after orphanMargin and a second more, the older
	// certificate lies before the window of a rotation that begins now.
	time.Sleep(orphanMargin + time.Second)
	since := time.Now()
	cur := mintFor(t, r, "rotate/x/run-0", since)
	bystander := mintFor(t, p.rotator(role, other, nil), "rotate/other/run-1", since)
	lost := mintFor(t, r, "rotate/x/run-1", since, cur)
	// The store never records lost: the Create gives up and the rollback sweeps.
	sweeper := p.rotator(role, request(), p.tokenClient(PolicyFor(p.mount, role)))
	req := rotators.MintRequest{
		SecretID: "test/cert", Token: "rotate/x/run-1", Since: since, Known: []map[string]string{cur},
		Current: &secret.Version{SecretID: "test/cert", Token: "rotate/x/run-0", Number: 1, Metadata: cur},
	}
	removed, err := sweeper.Sweep(t.Context(), req)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	want := lost[certs.MetadataSerial]
	if len(removed) != 1 || removed[0][certs.MetadataSerial] != want || len(removed[0]) != 1 {
		t.Fatalf("Sweep removed %v, want serial %s only", removed, want)
	}
	if !p.revokedInVault(want) || !p.listed(want) {
		t.Fatal("the swept certificate is not revoked and on the CRL")
	}
	for name, md := range map[string]map[string]string{"current": cur, "other name's": bystander, "older": older} {
		if p.revokedInVault(md[certs.MetadataSerial]) {
			t.Errorf("the %s certificate was revoked", name)
		}
	}

	again, err := sweeper.Sweep(t.Context(), req)
	if err != nil || len(again) != 0 {
		t.Fatalf("a second Sweep: removed %v, %v; want nothing", again, err)
	}
}
