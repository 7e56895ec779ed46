package certs

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Material field names both certificate kinds return. Only FieldPrivateKey is secret;
// the other two are public and may appear in logs and metadata.
const (
	FieldCertificate = "certificate"
	FieldPrivateKey  = "private_key"
	FieldCAChain     = "ca_chain"
)

// Metadata keys Metadata writes.
const (
	MetadataSerial     = "serial"
	MetadataNotBefore  = "not_before"
	MetadataNotAfter   = "not_after"
	MetadataCommonName = "common_name"
)

// Metadata returns the non-secret handles of cert that later steps need: the serial to
// revoke, and the validity window Due reads.
func Metadata(cert *x509.Certificate) map[string]string {
	return map[string]string{
		MetadataSerial:     FormatSerial(cert.SerialNumber),
		MetadataNotBefore:  cert.NotBefore.UTC().Format(time.RFC3339),
		MetadataNotAfter:   cert.NotAfter.UTC().Format(time.RFC3339),
		MetadataCommonName: cert.Subject.CommonName,
	}
}

// FormatSerial writes a serial number the way Vault prints one: its big-endian bytes in
// lower-case hex, joined by ':' ("3f:0a:..."). Matching Vault's text means an operator can
// paste a serial from Keyturn's metadata into any Vault command.
func FormatSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ":")
}

// ParseSerial reads a serial number in FormatSerial's form, also accepting '-' as the
// separator (Vault's storage form), none at all, and upper case.
func ParseSerial(s string) (*big.Int, error) {
	digits := strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s))
	if digits == "" {
		return nil, errors.New("serial is empty")
	}
	n, ok := new(big.Int).SetString(digits, 16)
	if !ok || n.Sign() < 0 {
		return nil, fmt.Errorf("serial %q is not hexadecimal", s)
	}
	return n, nil
}

// SameSerial reports whether two serials in any ParseSerial form are the same number.
// Unparseable serials are never the same as anything.
func SameSerial(a, b string) bool {
	x, err := ParseSerial(a)
	if err != nil {
		return false
	}
	y, err := ParseSerial(b)
	return err == nil && x.Cmp(y) == 0
}

// ParseCertificates reads every CERTIFICATE block of PEM text, in order.
func ParseCertificates(pemText string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(pemText)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// EncodeCertificates writes certificates as concatenated PEM blocks.
func EncodeCertificates(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw}))
	}
	return b.String()
}

// Leaf returns the certificate of material m: the first certificate of its certificate
// field.
func Leaf(m secret.Material) (*x509.Certificate, error) {
	text := m.Get(FieldCertificate)
	if text.IsZero() {
		return nil, fmt.Errorf("material has no %q", FieldCertificate)
	}
	certs, err := ParseCertificates(text.Reveal())
	if err != nil {
		return nil, fmt.Errorf("material field %q: %w", FieldCertificate, err)
	}
	return certs[0], nil
}

// PoolFromPEM returns a pool of the certificates in PEM text, for the trusted CA. It
// fails on text with no certificate, so an empty pool can never stand for "trust the
// system roots" by accident.
func PoolFromPEM(pemText []byte) (*x509.CertPool, []*x509.Certificate, error) {
	certs, err := ParseCertificates(string(pemText))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}
