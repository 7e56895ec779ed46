package postgres

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// testCA is a private CA that signs one server certificate.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverPair returns a certificate for dnsNames signed by ca, and its key, in PEM.
func (ca *testCA) serverPair(t *testing.T, dnsNames ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// writeForServer writes files the server process can read: when the tests run as root,
// the server runs as the postgres OS user, which must own its key (PostgreSQL refuses a
// key others can read) and be able to reach the directory.
func writeForServer(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres OS user: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(path, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestVerifyFull runs rotations against a server whose certificate, for "localhost" only,
// is signed by a private CA: verify-full with that CA as sslrootcert works, verify-full
// to an address the certificate does not name or with another CA is refused, and
// verify-ca checks the chain but not the name.
func TestVerifyFull(t *testing.T) {
	ca := newTestCA(t, "keyturn test CA")
	certPEM, keyPEM := ca.serverPair(t, "localhost")
	dir := writeForServer(t, map[string][]byte{"server.crt": certPEM, "server.key": keyPEM})
	c := pgtest.ForTestWith(t, pgtest.Options{Settings: map[string]string{
		"ssl": "on", "ssl_cert_file": filepath.Join(dir, "server.crt"), "ssl_key_file": filepath.Join(dir, "server.key"),
	}})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherCA, newTestCA(t, "another CA").pem, 0o600); err != nil {
		t.Fatal(err)
	}

	// An admin and a group role on this server.
	super := connectDSN(t, c.SuperDSN())
	admin, role, password := unique("tls_admin"), unique("tls_app"), newPassword()
	v, err := newVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH LOGIN CREATEROLE PASSWORD %s", ident(admin), quoteLiteral(v.text)))
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH NOLOGIN", ident(role)))
	if serverVersion(t, super) >= 160000 {
		exec(t, super, fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE", ident(role), ident(admin)))
	}
	config := func(host, sslmode, rootCert string) Config {
		return Config{
			Host: host, Port: c.Port, SSLMode: sslmode, SSLRootCert: rootCert,
			Role: role, AdminUser: admin, AdminPassword: secret.NewSensitive(password),
		}
	}

	t.Run("verify-full to the named host", func(t *testing.T) {
		s := &step{t: t, r: mustNew(t, config("localhost", "verify-full", caFile))}
		// Apply connects as the admin and Test as the new login role, both under
		// verify-full: a rotation can only succeed over TLS to a certificate the CA signed
		// for this host name.
		s.rotate(nil)
	})
	t.Run("verify-ca to an address the certificate does not name", func(t *testing.T) {
		s := &step{t: t, r: mustNew(t, config("127.0.0.1", "verify-ca", caFile))}
		s.rotate(nil)
	})
	refused := map[string]Config{
		"verify-full to an address the certificate does not name": config("127.0.0.1", "verify-full", caFile),
		"verify-full with another CA":                             config("localhost", "verify-full", otherCA),
		"verify-ca with another CA":                               config("127.0.0.1", "verify-ca", otherCA),
	}
	for name, cfg := range refused {
		t.Run(name, func(t *testing.T) {
			s := &step{t: t, r: mustNew(t, cfg)}
			v, m := s.generate(nil)
			err := s.r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m})
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Apply = %v, want a certificate error", err)
			}
		})
	}

	// The connection settings carry sslmode and sslrootcert to pgx's TLS configuration.
	r := mustNew(t, config("localhost", "verify-full", caFile))
	cc, err := r.connConfig(admin, "x")
	if err != nil {
		t.Fatal(err)
	}
	if cc.TLSConfig == nil || cc.TLSConfig.ServerName != "localhost" || cc.TLSConfig.InsecureSkipVerify || cc.TLSConfig.RootCAs == nil {
		t.Errorf("verify-full TLS config: %+v", cc.TLSConfig)
	}
}
