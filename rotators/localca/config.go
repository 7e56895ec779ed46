package localca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// Config describes one certificate signed by a CA whose key Keyturn holds.
type Config struct {
	// CACertPEM is the CA certificate, PEM. It must be a CA (basic constraints) allowed
	// to sign certificates and CRLs, with a subject key identifier. NewCA makes one.
	CACertPEM []byte
	// CAKeyPEM is the CA's private key, PEM (PKCS#8, or the EC and RSA forms).
	CAKeyPEM secret.Sensitive
	// CRLFile is where the CRL is published, PEM ("X509 CRL"). Required. It is created
	// on the first revocation; CRLFile+".lock" serializes writers, also across
	// processes. Each CA needs a file of its own.
	CRLFile string
	// Request is the certificate to make.
	Request certs.Request
}

// ca is the parsed, checked signing identity of a Config.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
	pool *x509.CertPool
}

// parse checks cfg (defaults already applied) and returns its CA. Every problem is
// reported at once, in one error wrapping rotators.ErrInvalidConfig.
func (c Config) parse(now time.Time) (*ca, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.CRLFile == "" {
		add("crl_file is empty: name the file the CRL is published to, e.g. /var/lib/keyturn/localca/dev-ca.crl")
	}
	problems = append(problems, c.Request.Problems()...)

	var out ca
	switch {
	case len(c.CACertPEM) == 0:
		add("ca_cert is empty: reference the CA certificate, e.g. file:localca/dev-ca#certificate")
	default:
		cas, err := certs.ParseCertificates(string(c.CACertPEM))
		if err != nil {
			add("ca_cert: %v", err)
			break
		}
		out.cert = cas[0]
		for _, msg := range caProblems(out.cert, now) {
			add("ca_cert %q %s", out.cert.Subject.CommonName, msg)
		}
	}
	if c.CAKeyPEM.IsZero() {
		add("ca_key is empty: reference the CA private key, e.g. file:localca/dev-ca#private_key")
	} else {
		key, err := certs.ParsePrivateKey(c.CAKeyPEM.Reveal())
		switch {
		case err != nil:
			add("ca_key: %v", err)
		case out.cert != nil && !certs.KeyMatches(out.cert, key):
			add("ca_key is not the key of ca_cert %q: reference the key that was made with that certificate", out.cert.Subject.CommonName)
		default:
			out.key = key
		}
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("localca: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	out.pem = certs.EncodeCertificates(out.cert)
	out.pool = x509.NewCertPool()
	out.pool.AddCert(out.cert)
	return &out, nil
}

// caProblems says why cert cannot sign leaves and CRLs here, if it cannot.
func caProblems(cert *x509.Certificate, now time.Time) []string {
	var problems []string
	if !cert.BasicConstraintsValid || !cert.IsCA {
		problems = append(problems, "is not a CA certificate (basic constraints CA:TRUE): make one with keyturn dev, or use your CA's certificate")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		problems = append(problems, "may not sign certificates (key usage lacks keyCertSign)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		problems = append(problems, "may not sign CRLs (key usage lacks cRLSign), so nothing it signs could be revoked")
	}
	if len(cert.SubjectKeyId) == 0 {
		problems = append(problems, "has no subject key identifier, which a CRL must name")
	}
	if !cert.NotAfter.After(now) {
		problems = append(problems, fmt.Sprintf("expired at %s: make a new CA", cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	return problems
}

// cleanCRLPath makes the CRL path canonical, so two spellings of one file share a lock.
func cleanCRLPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
