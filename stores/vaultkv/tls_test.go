package vaultkv

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
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
)

func TestTLS(t *testing.T) {
	cert, key := selfSigned(t, "vault.keyturn.test")
	srv := vaulttest.Start(t, vaulttest.Options{TLSCert: cert, TLSKey: key})
	if !strings.HasPrefix(srv.Addr, "https://") {
		t.Fatalf("server address %s is not HTTPS", srv.Addr)
	}
	token := secret.NewSensitive(srv.Token)
	// Reached by IP, checked against the certificate's DNS name.
	byName := TLSConfig{CACert: cert, ServerName: "vault.keyturn.test"}

	for name, tc := range map[string]struct {
		tls TLSConfig
		ok  bool
	}{
		"trusted CA":                {TLSConfig{CACert: cert}, true},
		"trusted CA, server name":   {byName, true},
		"wrong server name":         {TLSConfig{CACert: cert, ServerName: "other.test"}, false},
		"system CAs only":           {TLSConfig{}, false},
		"verification switched off": {TLSConfig{Insecure: true}, true},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := New(t.Context(), Config{Address: srv.Addr, Auth: Auth{Token: token}, TLS: tc.tls, Timeout: 5 * time.Second})
			if !tc.ok {
				if err == nil {
					_ = s.Close()
					t.Fatal("New succeeded")
				}
				if isUnavailable(err) || !strings.Contains(err.Error(), "TLS verification") {
					t.Fatalf("New: %v; want a TLS verification error that is not retryable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			id := uniqueID(t, "tls")
			stage(t, s, id, "v1", pw("one"), nil)
			promote(t, s, id, "v1")
			expectRead(t, s, id, secret.StageCurrent, "v1", pw("one"))
		})
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and dnsName, and its key.
func selfSigned(t *testing.T, dnsName string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: dnsName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{dnsName},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
