package vaultpki

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

func TestRevokePutsSerialInCRL(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	v, m, _ := mint(t, r, "t/1", nil)
	serial := v.Metadata[certs.MetadataSerial]
	if p.listed(serial) || p.revokedInVault(serial) {
		t.Fatal("revoked before Revoke")
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !p.listed(serial) || !p.revokedInVault(serial) {
		t.Fatal("Revoke did not revoke")
	}
	n := serialOf(t, m)
	var entry bool
	for _, e := range p.crl().RevokedCertificateEntries {
		if e.SerialNumber.Cmp(n) == 0 && time.Since(e.RevocationTime) < time.Minute {
			entry = true
		}
	}
	if !entry {
		t.Error("CRL entry missing or with an old revocation time")
	}
	if err := testVersion(t, r, v, m); !errors.Is(err, rotators.ErrCredentialRejected) || !strings.Contains(err.Error(), "revoked in Vault") {
		t.Fatalf("Test after Revoke = %v", err)
	}
}

func TestRevokeNeverKeep(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	v, m, _ := mint(t, r, "t/1", nil)
	// A version whose serial is Keep's (written differently) is left alone.
	keep := v
	keep.Metadata = map[string]string{certs.MetadataSerial: strings.ToUpper(strings.ReplaceAll(v.Metadata[certs.MetadataSerial], ":", "-"))}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v, Keep: &keep}); err != nil {
		t.Fatal(err)
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Keep's certificate was revoked: %v", err)
	}
}

func TestMintRevokesAbandoned(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	first, firstM, minted := mint(t, r, "t/1", nil)
	again, againM, _ := mint(t, r, "t/1", minted)
	if again.Metadata[certs.MetadataSerial] == first.Metadata[certs.MetadataSerial] {
		t.Fatal("the repeated Mint returned the abandoned certificate")
	}
	serial := first.Metadata[certs.MetadataSerial]
	if !p.revokedInVault(serial) || !p.listed(serial) {
		t.Fatal("the abandoned certificate was not revoked and listed")
	}
	if err := testVersion(t, r, first, firstM); !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test of the abandoned certificate = %v", err)
	}
	if err := testVersion(t, r, again, againM); err != nil {
		t.Fatalf("Test of the new certificate: %v", err)
	}
	// Abandoned metadata without a serial (Vault never answered) is skipped.
	if _, _, _ = mint(t, r, "t/2", []map[string]string{{"note": "no serial"}}); t.Failed() {
		t.Fatal("Mint with serial-less abandoned metadata failed")
	}
}

func TestRevokeUnknownAndExpired(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	r := p.rotator(role, request(), nil)
	unknown := secret.Version{Token: "t/u", Metadata: map[string]string{certs.MetadataSerial: "01:02:03:04"}}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: unknown}); err != nil {
		t.Fatalf("Revoke of an unknown serial: %v", err)
	}

	// A certificate of a few seconds, signed straight through the API.
	key, _, err := certs.NewKey(certs.KeyTypeEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certs.NewCSR(request(), key)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := p.root.Logical().WriteWithContext(t.Context(), p.mount+"/sign/"+role, map[string]any{"csr": string(csr), "ttl": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	serial := sec.Data["serial_number"].(string)
	time.Sleep(4 * time.Second)
	expired := secret.Version{Token: "t/e", Metadata: map[string]string{certs.MetadataSerial: serial}}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: expired}); err != nil {
		t.Fatalf("Revoke of an expired certificate: %v", err)
	}
	if p.revokedInVault(serial) {
		t.Error("Vault revoked an expired certificate; expected it to refuse with a warning")
	}

	// Metadata without a serial is not a version this kind made.
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: secret.Version{Token: "t/x"}}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Fatalf("Revoke without a serial = %v", err)
	}
}

func TestRevokeFailsWhenTheCRLNeverListsIt(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	v, _, _ := mint(t, r, "t/1", nil)
	if _, err := p.root.Logical().WriteWithContext(t.Context(), p.mount+"/config/crl", map[string]any{"disable": true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v})
	if !errors.Is(err, errNotListed) || !strings.Contains(err.Error(), "config/crl") {
		t.Fatalf("Revoke with the CRL disabled = %v, want errNotListed with the fix", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Revoke waited %s; the wait must be bounded", d)
	}
	for _, kind := range []error{rotators.ErrInvalidConfig, rotators.ErrPermissionDenied} {
		if errors.Is(err, kind) {
			t.Errorf("error wraps %v; a CRL that may yet be enabled is worth a retry", kind)
		}
	}
}
