package vaultpki

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// mintFor calls Mint for token as a retried Create step would: what the store knows,
// when the rotation began, and no heartbeat hint.
func mintFor(t *testing.T, r *Rotator, token string, since time.Time, known ...map[string]string) map[string]string {
	t.Helper()
	g, err := r.Mint(t.Context(), rotators.MintRequest{SecretID: "test/cert", Token: secret.VersionToken(token), Since: since, Known: known})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return g.Metadata
}

// A Create killed after Vault signed and before the store (or a heartbeat) got the
// certificate leaves it valid and off the CRL. The retry finds it among the mount's
// certificates (its names, signed since the rotation began, unknown to the store) and
// revokes it; certificates of the store, of other names, or older than the rotation stay.
func TestMintRevokesWhatAKilledMintSignedWithoutAnyHint(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	r := p.rotator(role, request(), nil)
	other := request()
	other.CommonName, other.DNSNames = "other."+testDomain, nil
	bystander := mintFor(t, p.rotator(role, other, nil), "rotate/other/run-1", time.Time{})

	since := time.Now()
	stored := mintFor(t, r, "rotate/x/run-0b", since)
	lost := mintFor(t, r, "rotate/x/run-1", since, stored)
	// The step dies here: neither the store nor a heartbeat heard of lost.
	again := mintFor(t, r, "rotate/x/run-1", since, stored)

	if !p.revokedInVault(lost[certs.MetadataSerial]) || !p.listed(lost[certs.MetadataSerial]) {
		t.Fatal("the certificate of the killed attempt is not revoked and on the CRL")
	}
	for name, md := range map[string]map[string]string{"retry's own": again, "stored": stored, "other names'": bystander} {
		if p.revokedInVault(md[certs.MetadataSerial]) {
			t.Errorf("the %s certificate was revoked", name)
		}
	}
	// A rotation that began a minute from now (as Since tells it) did not sign older,
	// which is unknown to the store but not its to revoke.
	older := mintFor(t, r, "rotate/x/run-older", time.Time{})
	late := mintFor(t, r, "rotate/x/run-2", time.Now().Add(time.Minute), stored, again)
	if p.revokedInVault(older[certs.MetadataSerial]) || p.revokedInVault(late[certs.MetadataSerial]) {
		t.Error("a certificate older than the rotation was revoked")
	}
}

// TestKillsLeaveNoValidOrphan kills Create at random points (see rotatortest.RunKills)
// against a real Vault, with the least-privilege policy. After every retried rotation
// the mount must hold exactly one valid leaf certificate: the current version's.
func TestKillsLeaveNoValidOrphan(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	limited := p.tokenClient(PolicyFor(p.mount, role))
	rotatortest.RunKills(t, rotatortest.KillHarness{
		New: func(t *testing.T, point func(string)) rotators.Rotator {
			cfg := limited.CloneConfig()
			hc := *cfg.HttpClient
			hc.Transport = rotatortest.PointTransport(hc.Transport, point)
			cfg.HttpClient = &hc
			c, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken(limited.Token())
			return p.rotator(role, request(), c)
		},
		Live:   func(t *testing.T) []string { return p.validLeaves() },
		Handle: func(v secret.Version) string { return v.Metadata[certs.MetadataSerial] },
	})
}

// validLeaves lists the mount's certificates that are not CAs, not revoked and not
// expired, with the root token, as serials in metadata form.
func (p *pki) validLeaves() []string {
	p.t.Helper()
	ctx := p.t.Context()
	sec, err := p.root.Logical().ListWithContext(ctx, p.mount+"/certs")
	if err != nil || sec == nil {
		p.t.Fatalf("list certs: %v", err)
	}
	var out []string
	for _, k := range sec.Data["keys"].([]any) {
		c, err := p.root.Logical().ReadWithContext(ctx, p.mount+"/cert/"+k.(string))
		if err != nil || c == nil {
			p.t.Fatalf("read cert %v: %v", k, err)
		}
		parsed, err := certs.ParseCertificates(c.Data["certificate"].(string))
		if err != nil {
			p.t.Fatal(err)
		}
		leaf := parsed[0]
		if leaf.IsCA || intField(c.Data["revocation_time"]) != 0 || time.Now().After(leaf.NotAfter) {
			continue
		}
		out = append(out, certs.FormatSerial(leaf.SerialNumber))
	}
	slices.Sort(out)
	return out
}
