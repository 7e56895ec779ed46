package localca

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

func TestConformance(t *testing.T) {
	var (
		mu   sync.Mutex
		envs = map[*testing.T]*env{}
	)
	rotatortest.Run(t, rotatortest.Harness{
		PublicFields: []string{certs.FieldCertificate, certs.FieldCAChain},
		New: func(t *testing.T) rotators.Rotator {
			e := newEnv(t, 24*time.Hour)
			mu.Lock()
			envs[t] = e
			mu.Unlock()
			return e.rotator(t, request())
		},
		AfterRotation: func(t *testing.T, prev, next secret.Version) {
			mu.Lock()
			e := envs[t]
			mu.Unlock()
			if !e.lists(t, prev.Metadata[certs.MetadataSerial]) {
				t.Errorf("the CRL does not list the revoked certificate")
			}
			if e.lists(t, next.Metadata[certs.MetadataSerial]) {
				t.Errorf("the CRL lists the kept certificate")
			}
		},
	})
}

func TestNewCA(t *testing.T) {
	certPEM, keyPEM, err := NewCA("Keyturn Dev CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := certs.ParseCertificates(string(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	ca := cas[0]
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("basic constraints: CA %v, path length %d (zero %v)", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("key usage %b", ca.KeyUsage)
	}
	if len(ca.SubjectKeyId) == 0 || ca.Subject.CommonName != "Keyturn Dev CA" {
		t.Errorf("SKI %x, subject %s", ca.SubjectKeyId, ca.Subject)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 48*time.Hour || life > 48*time.Hour+time.Minute {
		t.Errorf("lifetime %s", life)
	}
	key, err := certs.ParsePrivateKey(keyPEM.Reveal())
	if err != nil || !certs.KeyMatches(ca, key) {
		t.Fatalf("key: %v", err)
	}
	if ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA key is %s, want ECDSA", ca.PublicKeyAlgorithm)
	}
	if fmt.Sprint(keyPEM) != secret.Redacted {
		t.Error("key prints")
	}
	for _, bad := range []struct {
		cn string
		d  time.Duration
	}{{"", time.Hour}, {"x", 0}} {
		if _, _, err := NewCA(bad.cn, bad.d); !errors.Is(err, rotators.ErrInvalidConfig) {
			t.Errorf("NewCA(%q, %s) = %v", bad.cn, bad.d, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	e := newEnv(t, time.Hour)
	other := newEnv(t, time.Hour)
	r := e.rotator(t, request())
	_, leaf, _ := mint(t, r, "t/1", nil)

	for name, c := range map[string]struct {
		mutate func(*Config)
		want   []string
	}{
		"key of another CA": {func(c *Config) { c.CAKeyPEM = other.keyPEM }, []string{"ca_key is not the key of ca_cert"}},
		"no CRL file":       {func(c *Config) { c.CRLFile = "" }, []string{"crl_file is empty"}},
		"no CA":             {func(c *Config) { c.CACertPEM, c.CAKeyPEM = nil, secret.Sensitive{} }, []string{"ca_cert is empty", "ca_key is empty"}},
		"garbled key":       {func(c *Config) { c.CAKeyPEM = secret.NewSensitive("nope") }, []string{"ca_key"}},
		"leaf as CA": {func(c *Config) {
			c.CACertPEM, c.CAKeyPEM = []byte(leaf.Get(certs.FieldCertificate).Reveal()), leaf.Get(certs.FieldPrivateKey)
		}, []string{"is not a CA certificate", "may not sign certificates"}},
		"bad request": {func(c *Config) { c.Request.TTL = 0 }, []string{"ttl"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := e.cfg
			c.mutate(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if k := cfg.CAKeyPEM.Reveal(); len(k) > 20 && strings.Contains(fmt.Sprintf("%v %+v", err, err), k) {
				t.Error("error holds the CA key")
			}
		})
	}
}

func TestLeafProfile(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	v, m, minted := mint(t, r, "t/1", nil)
	if len(minted) != 1 || minted[0][certs.MetadataSerial] != v.Metadata[certs.MetadataSerial] {
		t.Fatalf("Minted %v", minted)
	}
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(e.ca); err != nil {
		t.Fatalf("not signed by the CA: %v", err)
	}
	if leaf.IsCA || !bytes.Equal(leaf.AuthorityKeyId, e.ca.SubjectKeyId) {
		t.Errorf("IsCA %v, AKI %x (CA SKI %x)", leaf.IsCA, leaf.AuthorityKeyId, e.ca.SubjectKeyId)
	}
	if fmt.Sprint(leaf.ExtKeyUsage) != fmt.Sprint([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("EKU %v", leaf.ExtKeyUsage)
	}
	if leaf.SerialNumber.BitLen() < 100 || leaf.SerialNumber.BitLen() > 128 {
		t.Errorf("serial of %d bits", leaf.SerialNumber.BitLen())
	}
	if strings.Join(leaf.DNSNames, ",") != "app.keyturn.test,api.keyturn.test" || len(leaf.IPAddresses) != 1 {
		t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != time.Hour+backdate {
		t.Errorf("lifetime %s", life)
	}
	if m.Get(certs.FieldCAChain).Reveal() != certs.EncodeCertificates(e.ca) {
		t.Error("ca_chain is not the CA")
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Test: %v", err)
	}
	if _, err := os.Stat(e.crl); !os.IsNotExist(err) {
		t.Error("the CRL file exists before any revocation")
	}
}

func TestRevokeNeverKeep(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	v, m, _ := mint(t, r, "t/1", nil)
	keep := secret.Version{Token: "t/keep", Metadata: map[string]string{certs.MetadataSerial: strings.ToUpper(v.Metadata[certs.MetadataSerial])}}
	revoke(t, r, v, &keep)
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Keep's certificate was revoked: %v", err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: secret.Version{Token: "t/none"}}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Fatalf("Revoke without a serial = %v", err)
	}
}

// Revokes from many goroutines (each with a Rotator of its own, as separate workers
// have) and from separate processes, all on one CRL file: every serial lands, and the
// CRL number counts each change once.
func TestMintRevokesAbandoned(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	first, firstM, minted := mint(t, r, "t/1", nil)
	again, againM, _ := mint(t, r, "t/1", minted)
	if !e.lists(t, first.Metadata[certs.MetadataSerial]) || e.lists(t, again.Metadata[certs.MetadataSerial]) {
		t.Fatal("the abandoned certificate is not (alone) on the CRL")
	}
	if err := testVersion(t, r, first, firstM); !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test of the abandoned certificate = %v", err)
	}
	if err := testVersion(t, r, again, againM); err != nil {
		t.Fatalf("Test of the new certificate: %v", err)
	}
}

func TestNamesMismatchIsCheckFailed(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	v, m, _ := mint(t, e.rotator(t, request()), "t/1", nil)
	other := request()
	other.CommonName = "other.keyturn.test"
	err := testVersion(t, e.rotator(t, other), v, m)
	if !errors.Is(err, rotators.ErrCheckFailed) || errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Test with other names = %v, want ErrCheckFailed alone", err)
	}
}

// A CRL file signed by another CA is a configuration mistake (two CAs sharing a file):
// neither Test nor Revoke trusts or rewrites it.
func TestLeafNeverOutlivesCA(t *testing.T) {
	e := newEnv(t, 2*time.Hour)
	req := request()
	req.TTL = 10 * time.Hour
	r := e.rotator(t, req)
	v, m, _ := mint(t, r, "t/1", nil)
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.NotAfter.Equal(e.ca.NotAfter) {
		t.Errorf("leaf ends %s, CA %s", leaf.NotAfter, e.ca.NotAfter)
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Test: %v", err)
	}
}

func TestDue(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	req := request()
	req.TTL = 3 * time.Hour
	r := e.rotator(t, req)
	v, _, _ := mint(t, r, "t/1", nil)
	nb, _ := time.Parse(time.RFC3339, v.Metadata[certs.MetadataNotBefore])
	na, _ := time.Parse(time.RFC3339, v.Metadata[certs.MetadataNotAfter])
	at := nb.Add(time.Duration(float64(na.Sub(nb)) * 2 / 3))
	if due, when := r.Due(v, time.Now()); due || !when.Equal(at) {
		t.Fatalf("fresh: Due = %v, %s; want false, %s", due, when, at)
	}
	if due, _ := r.Due(v, at.Add(-time.Second)); due {
		t.Error("due before 2/3")
	}
	if due, _ := r.Due(v, at); !due {
		t.Error("not due at 2/3")
	}
	if due, when := r.Due(secret.Version{}, at); !due || !when.Equal(at) {
		t.Error("a version without metadata is not due at once")
	}
}

func TestRSALeaf(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	req := request()
	req.KeyType = certs.KeyTypeRSA
	r := e.rotator(t, req)
	v, m, _ := mint(t, r, "t/1", nil)
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 || leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Fatalf("RSA leaf: %T, usage %b", leaf.PublicKey, leaf.KeyUsage)
	}
	if err := testVersion(t, r, v, m); err != nil {
		t.Fatalf("Test: %v", err)
	}
}
