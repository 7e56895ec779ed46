package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// testCA is a throwaway CA for building certificates with chosen defects.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leafOpts adjusts a leaf from its defaults (valid now for an hour, names of r).
type leafOpts struct {
	notBefore, notAfter time.Time
	cn                  string
	dns                 []string
	ips                 []net.IP
	eku                 []x509.ExtKeyUsage
}

// issue signs a leaf for r (or opts) with a fresh key and returns its material.
func (ca *testCA) issue(t *testing.T, r Request, opts leafOpts) secret.Material {
	t.Helper()
	key, keyPEM, err := NewKey(r.KeyType, r.KeyBits)
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := r.SANs()
	if opts.dns != nil {
		dns = opts.dns
	}
	if opts.ips != nil {
		ips = opts.ips
	}
	cn := r.CommonName
	if opts.cn != "" {
		cn = opts.cn
	}
	if opts.notBefore.IsZero() {
		opts.notBefore = time.Now().Add(-30 * time.Second)
	}
	if opts.notAfter.IsZero() {
		opts.notAfter = opts.notBefore.Add(time.Hour)
	}
	if opts.eku == nil {
		opts.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    opts.notBefore,
		NotAfter:     opts.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  opts.eku,
	}, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return secret.Material{
		FieldCertificate: secret.NewSensitive(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		FieldPrivateKey:  keyPEM,
		FieldCAChain:     secret.NewSensitive(EncodeCertificates(ca.cert)),
	}
}
