package vaultpki

import (
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// shared is the package's one Vault dev server; each test mounts PKI engines of its own.
var shared *vaulttest.Server

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }

var seq atomic.Int64

// unique returns a fresh name with the given prefix.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// testDomain is what the test roles allow, with subdomains and IP SANs.
const testDomain = "keyturn.test"

// pki is one PKI mount with an internal root CA, managed with the root token.
type pki struct {
	t     *testing.T
	srv   *vaulttest.Server
	root  *api.Client
	mount string
	ca    *x509.Certificate
	caPEM string
}

// newPKI mounts a PKI engine, generates an EC root CA in it and configures its CRL with
// crl (Vault's defaults when nil).
func newPKI(t *testing.T, crl map[string]any) *pki {
	t.Helper()
	srv := vaulttest.Shared(t, shared)
	root := srv.Client(t)
	ctx := t.Context()
	mount := unique("pki")
	if err := root.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:   "pki",
		Config: api.MountConfigInput{MaxLeaseTTL: "87600h"},
	}); err != nil {
		t.Fatalf("mount pki: %v", err)
	}
	sec, err := root.Logical().WriteWithContext(ctx, mount+"/root/generate/internal", map[string]any{
		"common_name": "Keyturn Test Root " + mount,
		"ttl":         "8760h",
		"key_type":    "ec",
	})
	if err != nil {
		t.Fatalf("generate root CA: %v", err)
	}
	caPEM, _ := sec.Data["certificate"].(string)
	cas, err := certs.ParseCertificates(caPEM)
	if err != nil {
		t.Fatalf("root CA: %v", err)
	}
	if crl == nil {
		crl = map[string]any{"expiry": "72h"}
	}
	if _, err := root.Logical().WriteWithContext(ctx, mount+"/config/crl", crl); err != nil {
		t.Fatalf("configure CRL: %v", err)
	}
	return &pki{t: t, srv: srv, root: root, mount: mount, ca: cas[0], caPEM: caPEM}
}

// role creates a role allowing the test domain, its subdomains and IP SANs, EC and RSA
// CSRs alike; settings override those defaults.
func (p *pki) role(settings map[string]any) string {
	p.t.Helper()
	name := unique("role")
	body := map[string]any{
		"allowed_domains":  testDomain,
		"allow_subdomains": true,
		"allow_ip_sans":    true,
		"key_type":         "any",
		"max_ttl":          "72h",
	}
	for k, v := range settings {
		body[k] = v
	}
	if _, err := p.root.Logical().WriteWithContext(p.t.Context(), p.mount+"/roles/"+name, body); err != nil {
		p.t.Fatalf("create role: %v", err)
	}
	return name
}

// request is the certificate most tests ask for.
func request() certs.Request {
	return certs.Request{
		CommonName:  "app." + testDomain,
		DNSNames:    []string{"api." + testDomain},
		IPAddresses: []string{"127.0.0.1"},
		TTL:         time.Hour,
	}
}

// rotator returns a Rotator for role on this mount, with the root token unless client
// is given.
func (p *pki) rotator(role string, req certs.Request, client *api.Client) *Rotator {
	p.t.Helper()
	if client == nil {
		client = p.root
	}
	r, err := New(Config{Mount: p.mount, Role: role, Request: req}, client)
	if err != nil {
		p.t.Fatalf("New: %v", err)
	}
	return r
}

// tokenClient returns a client for a new token holding only the given policy text (and
// not Vault's default policy, so nothing else leaks in).
func (p *pki) tokenClient(policy string) *api.Client {
	p.t.Helper()
	ctx := p.t.Context()
	name := unique("policy")
	if err := p.root.Sys().PutPolicyWithContext(ctx, name, policy); err != nil {
		p.t.Fatalf("put policy: %v", err)
	}
	sec, err := p.root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies:        []string{name},
		NoDefaultPolicy: true,
		TTL:             "1h",
	})
	if err != nil {
		p.t.Fatalf("create token: %v", err)
	}
	c := p.srv.Client(p.t)
	c.SetToken(sec.Auth.ClientToken)
	return c
}

// crl reads the mount's CRL, checks its signature against the root CA, and returns it.
func (p *pki) crl() *x509.RevocationList {
	p.t.Helper()
	resp, err := p.root.Logical().ReadRawWithContext(p.t.Context(), p.mount+"/crl")
	if err != nil {
		p.t.Fatalf("read CRL: %v", err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		p.t.Fatalf("parse CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(p.ca); err != nil {
		p.t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

// listed reports whether the CRL lists serial.
func (p *pki) listed(serial string) bool {
	p.t.Helper()
	n, err := certs.ParseSerial(serial)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, e := range p.crl().RevokedCertificateEntries {
		if e.SerialNumber.Cmp(n) == 0 {
			return true
		}
	}
	return false
}

// revokedInVault reports Vault's revocation_time for serial as non-zero.
func (p *pki) revokedInVault(serial string) bool {
	p.t.Helper()
	sec, err := p.root.Logical().ReadWithContext(p.t.Context(), p.mount+"/cert/"+serial)
	if err != nil || sec == nil {
		p.t.Fatalf("read cert %s: %v (%v)", serial, err, sec)
	}
	return intField(sec.Data["revocation_time"]) != 0
}

// mint calls Mint and returns the version the store would record.
func mint(t *testing.T, r *Rotator, token string, abandoned []map[string]string) (secret.Version, secret.Material, []map[string]string) {
	t.Helper()
	var minted []map[string]string
	g, err := r.Mint(t.Context(), rotators.MintRequest{
		SecretID: "test/cert", Token: secret.VersionToken(token), Abandoned: abandoned,
		Minted: func(md map[string]string) { minted = append(minted, md) },
	})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return secret.Version{SecretID: "test/cert", Token: secret.VersionToken(token), Number: 1, CreatedAt: time.Now(), Metadata: g.Metadata}, g.Material, minted
}

func testVersion(t *testing.T, r *Rotator, v secret.Version, m secret.Material) error {
	t.Helper()
	return r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m})
}

func serialOf(t *testing.T, m secret.Material) *big.Int {
	t.Helper()
	leaf, err := certs.Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber
}

// apiMountPKI mounts a PKI engine with nothing in it.
var apiMountPKI = api.MountInput{Type: "pki"}

func poolOf(t *testing.T, pemText string) *x509.CertPool {
	t.Helper()
	pool, _, err := certs.PoolFromPEM([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}
