// Package testcerts makes a throwaway CA and a server certificate for loopback (127.0.0.1
// and localhost), for test servers that speak TLS (redistest, mariadbtest).
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Set is a CA and a server certificate it signed, valid for a day.
type Set struct {
	// CAPEM, CertPEM and KeyPEM are the CA certificate, the server certificate and its
	// private key, PEM-encoded.
	CAPEM, CertPEM, KeyPEM []byte
	// Roots trusts the CA.
	Roots *x509.CertPool
}

// New makes a CA and a certificate for 127.0.0.1 and localhost.
func New() (Set, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Set{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyturn test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Set{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Set{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Set{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Set{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Set{}, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return Set{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Roots:   roots,
	}, nil
}

// Write puts the three files in dir as ca.pem, cert.pem and key.pem, owned by uid and
// gid (a server that runs as another user must read them; -1 keeps the owner), and
// returns their paths.
func (s Set) Write(dir string, uid, gid int) (ca, cert, key string, err error) {
	paths := []string{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
	for i, data := range [][]byte{s.CAPEM, s.CertPEM, s.KeyPEM} {
		if err := os.WriteFile(paths[i], data, 0o600); err != nil {
			return "", "", "", err
		}
		if err := os.Chown(paths[i], uid, gid); err != nil {
			return "", "", "", err
		}
	}
	return paths[0], paths[1], paths[2], nil
}
