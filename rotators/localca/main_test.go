package localca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// helperEnv makes the test binary a revoking worker process instead of running tests:
// the concurrency test starts several, so the CRL lock is tried across processes.
const helperEnv = "KEYTURN_LOCALCA_REVOKE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(revokeHelper())
	}
	os.Exit(m.Run())
}

// revokeHelper revokes the serials in KEYTURN_LOCALCA_SERIALS (comma-separated) with the
// CA in the files the environment names, one Revoke call each.
func revokeHelper() int {
	certPEM, err1 := os.ReadFile(os.Getenv("KEYTURN_LOCALCA_CERT"))
	keyPEM, err2 := os.ReadFile(os.Getenv("KEYTURN_LOCALCA_KEY"))
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "helper: read CA:", err1, err2)
		return 2
	}
	r, err := New(Config{
		CACertPEM: certPEM, CAKeyPEM: secret.NewSensitive(string(keyPEM)),
		CRLFile: os.Getenv("KEYTURN_LOCALCA_CRL"), Request: request(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: New:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range strings.Split(os.Getenv("KEYTURN_LOCALCA_SERIALS"), ",") {
		v := secret.Version{Token: "helper", Metadata: map[string]string{certs.MetadataSerial: s}}
		if err := r.Revoke(ctx, rotators.RevokeRequest{Version: v}); err != nil {
			fmt.Fprintln(os.Stderr, "helper: Revoke:", err)
			return 1
		}
	}
	return 0
}

// request is the certificate most tests ask for.
func request() certs.Request {
	return certs.Request{
		CommonName:  "app.keyturn.test",
		DNSNames:    []string{"api.keyturn.test"},
		IPAddresses: []string{"127.0.0.1"},
		TTL:         time.Hour,
	}
}

// env is one CA with a CRL file of its own.
type env struct {
	cfg    Config
	ca     *x509.Certificate
	dir    string
	crl    string
	keyPEM secret.Sensitive
}

func newEnv(t *testing.T, validity time.Duration) *env {
	t.Helper()
	certPEM, keyPEM, err := NewCA("Keyturn Test CA "+t.Name(), validity)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	cas, err := certs.ParseCertificates(string(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crl := filepath.Join(dir, "pub", "ca.crl")
	return &env{
		cfg: Config{CACertPEM: certPEM, CAKeyPEM: keyPEM, CRLFile: crl, Request: request()},
		ca:  cas[0], dir: dir, crl: crl, keyPEM: keyPEM,
	}
}

func (e *env) rotator(t *testing.T, req certs.Request) *Rotator {
	t.Helper()
	cfg := e.cfg
	cfg.Request = req
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// readCRL parses the CRL file and checks it is a PEM "X509 CRL" signed by the CA.
func (e *env) readCRL(t *testing.T) *x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(e.crl)
	if err != nil {
		t.Fatalf("read CRL: %v", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "X509 CRL" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("CRL file is not one PEM X509 CRL block")
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(e.ca); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

// lists reports whether the CRL file lists serial (in metadata form).
func (e *env) lists(t *testing.T, serial string) bool {
	t.Helper()
	if _, err := os.Stat(e.crl); os.IsNotExist(err) {
		return false
	}
	n, err := certs.ParseSerial(serial)
	if err != nil {
		t.Fatal(err)
	}
	return listed(e.readCRL(t).RevokedCertificateEntries, n)
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

func revoke(t *testing.T, r *Rotator, v secret.Version, keep *secret.Version) {
	t.Helper()
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v, Keep: keep}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
}
