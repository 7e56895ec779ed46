package vaultpki

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Role: "web", Request: request()}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for name, c := range map[string]struct {
		cfg  Config
		want []string
	}{
		"no role":        {Config{Request: request()}, []string{"role is empty"}},
		"role with path": {Config{Role: "a/b", Request: request()}, []string{`role "a/b"`, "one path segment"}},
		"mount dot-dot":  {Config{Mount: "pki/../sys", Role: "web", Request: request()}, []string{"mount", "'..'"}},
		"request too":    {Config{Request: certs.Request{CommonName: "x." + testDomain}}, []string{"role is empty", "ttl"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.cfg.Validate()
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := New(ok, nil); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("New without a client = %v", err)
	}
}

func TestPolicyFor(t *testing.T) {
	p := PolicyFor("/pki-int/", "edge")
	for _, want := range []string{`path "pki-int/sign/edge"`, `path "pki-int/revoke"`, `path "pki-int/crl/rotate"`, `path "pki-int/cert/*"`} {
		if !strings.Contains(p, want) {
			t.Errorf("policy lacks %s", want)
		}
	}
	if strings.Contains(p, `path "pki/`) || strings.Contains(p, `/keyturn"`) {
		t.Errorf("policy still names the defaults:\n%s", p)
	}
	if strings.Contains(p, "/issue/") || strings.Contains(p, `"*"`) {
		t.Error("policy grants more than signing")
	}
}

func TestNewReadsTheMountCA(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	if r.trusted == nil || !r.trusted.Equal(poolOf(t, p.caPEM)) {
		t.Fatal("New did not trust the mount's CA")
	}

	// A mount without a CA, a mount that does not exist, and a CA that does not parse
	// are configuration errors that say what to do.
	bare := unique("bare")
	if err := p.root.Sys().MountWithContext(t.Context(), bare, &apiMountPKI); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"no CA":      {Config{Mount: bare, Role: "r", Request: request()}, "has no CA certificate"},
		"no mount":   {Config{Mount: "nowhere", Role: "r", Request: request()}, "check mount"},
		"garbled CA": {Config{Mount: p.mount, Role: "r", Request: request(), CAPEM: []byte("not PEM")}, "ca_file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(c.cfg, p.root)
			if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want ErrInvalidConfig saying %q", err, c.want)
			}
		})
	}
}

func TestMintUsesTheRole(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(nil), request(), nil)
	v, m, minted := mint(t, r, "t/1", nil)
	if len(minted) != 1 || minted[0][certs.MetadataSerial] != v.Metadata[certs.MetadataSerial] {
		t.Fatalf("Minted got %v, metadata %v", minted, v.Metadata)
	}
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(p.ca); err != nil {
		t.Fatalf("not signed by the mount's CA: %v", err)
	}
	if got := v.Metadata[certs.MetadataSerial]; got != certs.FormatSerial(leaf.SerialNumber) || !strings.Contains(got, ":") {
		t.Errorf("serial metadata %q", got)
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Test: %v", err)
	}
	// Vault keeps the certificate it signed under the same serial text.
	sec, err := p.root.Logical().ReadWithContext(t.Context(), p.mount+"/cert/"+v.Metadata[certs.MetadataSerial])
	if err != nil || sec == nil || !strings.Contains(sec.Data["certificate"].(string), "BEGIN CERTIFICATE") {
		t.Fatalf("Vault has no record of %s: %v", v.Metadata[certs.MetadataSerial], err)
	}
	if strings.Contains(fmt.Sprint(sec.Data), "PRIVATE KEY") {
		t.Error("Vault holds a private key")
	}
}

func TestNamesMismatchIsCheckFailed(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	v, m, _ := mint(t, p.rotator(role, request(), nil), "t/1", nil)

	other := request()
	other.DNSNames = []string{"other." + testDomain}
	err := testVersion(t, p.rotator(role, other, nil), v, m)
	if !errors.Is(err, rotators.ErrCheckFailed) || errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test with other names = %v, want ErrCheckFailed alone", err)
	}
	if !strings.Contains(err.Error(), "other."+testDomain) {
		t.Errorf("error does not name the missing name: %v", err)
	}
}

// A role that signs client certificates only makes certificates that work but not for
// the servers the inventory describes: a policy mismatch, not worth a retry.
func TestClientOnlyRoleIsCheckFailed(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(map[string]any{"server_flag": false}), request(), nil)
	v, m, _ := mint(t, r, "t/1", nil)
	err := testVersion(t, r, v, m)
	if !errors.Is(err, rotators.ErrCheckFailed) || !strings.Contains(err.Error(), "server_flag") {
		t.Fatalf("Test of a client-only certificate = %v, want ErrCheckFailed naming server_flag", err)
	}
}

// Revoking what Vault never issued, and what has already expired, is success: neither can
// be used.
// With CRL building disabled Vault still revokes, but no CRL will ever list the serial:
// Revoke gives up after its bounded wait and says where to look.
func TestDue(t *testing.T) {
	p := newPKI(t, nil)
	req := request()
	req.TTL = 3 * time.Hour
	r := p.rotator(p.role(nil), req, nil)
	v, m, _ := mint(t, r, "t/1", nil)
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	// Vault backdates NotBefore by 30 s; the renewal point is 2/3 of the real window.
	nb, na := leaf.NotBefore.Truncate(time.Second), leaf.NotAfter.Truncate(time.Second)
	at := nb.Add(time.Duration(float64(na.Sub(nb)) * 2 / 3))
	if due, when := r.Due(v, time.Now()); due || !when.Equal(at) {
		t.Fatalf("fresh certificate: Due = %v, %s; want false, %s", due, when, at)
	}
	if due, _ := r.Due(v, at.Add(-time.Second)); due {
		t.Error("due a second before 2/3")
	}
	if due, _ := r.Due(v, at); !due {
		t.Error("not due at 2/3")
	}
	if due, when := r.Due(secret.Version{}, at); !due || !when.Equal(at) {
		t.Error("a version without metadata is not due at once")
	}

	half := req
	half.RenewAt = 0.5
	r2 := p.rotator(p.role(nil), half, nil)
	if due, when := r2.Due(v, time.Now()); due || !when.Equal(nb.Add(na.Sub(nb)/2)) {
		t.Errorf("renew_at 0.5: Due = %v, %s", due, when)
	}
}

func TestRSAKeys(t *testing.T) {
	p := newPKI(t, nil)
	req := request()
	req.KeyType, req.KeyBits = certs.KeyTypeRSA, 3072
	r := p.rotator(p.role(nil), req, nil)
	v, m, _ := mint(t, r, "t/1", nil)
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 3072 {
		t.Fatalf("certificate key is %T", leaf.PublicKey)
	}
	if !strings.Contains(m.Get(certs.FieldPrivateKey).Reveal(), "BEGIN PRIVATE KEY") {
		t.Error("RSA key not in PKCS#8")
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Test: %v", err)
	}
}

func TestRoleRefusals(t *testing.T) {
	p := newPKI(t, nil)
	for name, c := range map[string]struct {
		role string
		req  func() certs.Request
		want string
	}{
		"name not allowed":    {p.role(map[string]any{"allowed_domains": "elsewhere.test"}), request, "allowed_domains"},
		"IP SANs not allowed": {p.role(map[string]any{"allow_ip_sans": false}), request, "allow_ip_sans"},
		"key type":            {p.role(map[string]any{"key_type": "rsa"}), request, `key_type "any"`},
		"unknown role":        {"no-such-role", request, "create the role"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.rotator(c.role, c.req(), nil).Mint(t.Context(), rotators.MintRequest{
				SecretID: "test/cert", Token: "t/1",
				Minted: func(map[string]string) { t.Error("Minted called for a refused request") },
			})
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("Mint = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not give the fix %q", err, c.want)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestPermissionDenied(t *testing.T) {
	p := newPKI(t, nil)
	role := p.role(nil)
	// A token that may read the CA but not sign or revoke.
	weak := p.tokenClient(`path "` + p.mount + `/ca/pem" { capabilities = ["read"] }`)
	r := p.rotator(role, request(), weak)
	_, err := r.Mint(t.Context(), rotators.MintRequest{SecretID: "test/cert", Token: "t/1"})
	if !errors.Is(err, rotators.ErrPermissionDenied) || !strings.Contains(err.Error(), "sign/"+role) || !strings.Contains(err.Error(), "policy.hcl") {
		t.Fatalf("Mint with a weak token = %v, want ErrPermissionDenied naming the path and the policy", err)
	}

	v, _, _ := mint(t, p.rotator(role, request(), nil), "t/2", nil)
	err = r.Revoke(t.Context(), rotators.RevokeRequest{Version: v})
	if !errors.Is(err, rotators.ErrPermissionDenied) || !strings.Contains(err.Error(), "revoke") {
		t.Fatalf("Revoke with a weak token = %v, want ErrPermissionDenied", err)
	}
}

// A role with no_store signs, but Vault then keeps no record to revoke by: Test refuses
// such a certificate before it can become current.
func TestNoStoreRoleIsInvalidConfig(t *testing.T) {
	p := newPKI(t, nil)
	r := p.rotator(p.role(map[string]any{"no_store": true}), request(), nil)
	v, m, _ := mint(t, r, "t/1", nil)
	err := testVersion(t, r, v, m)
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "no_store") {
		t.Fatalf("Test of a no_store certificate = %v", err)
	}
}
