package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// PEM block types this package writes.
const (
	pemPrivateKey  = "PRIVATE KEY"
	pemCertificate = "CERTIFICATE"
	pemCSR         = "CERTIFICATE REQUEST"
)

// NewKey makes a private key on this machine: ECDSA P-256 for KeyTypeEC (or ""), RSA of
// bits bits for KeyTypeRSA (0 means DefaultRSABits). It returns the key and the same key
// as PKCS#8 PEM, the form stored as private_key.
func NewKey(keyType string, bits int) (crypto.Signer, secret.Sensitive, error) {
	var key crypto.Signer
	var err error
	switch keyType {
	case "", KeyTypeEC:
		if bits != 0 && bits != 256 {
			return nil, secret.Sensitive{}, fmt.Errorf("new key: %w: key_bits %d does not go with key_type ec (always P-256)", rotators.ErrInvalidConfig, bits)
		}
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyTypeRSA:
		if bits == 0 {
			bits = DefaultRSABits
		}
		if msg := rsaBitsProblem(bits); msg != "" {
			return nil, secret.Sensitive{}, fmt.Errorf("new key: %w: key_bits %s", rotators.ErrInvalidConfig, msg)
		}
		key, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		return nil, secret.Sensitive{}, fmt.Errorf("new key: %w: key_type %q is not %q or %q", rotators.ErrInvalidConfig, keyType, KeyTypeEC, KeyTypeRSA)
	}
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("new %s key: %w", keyType, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("encode %s key: %w", keyType, err)
	}
	return key, secret.NewSensitive(string(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}))), nil
}

// NewCSR returns a PEM certificate signing request for r's names, signed with key. The
// CSR carries the CommonName as subject and every SAN (CommonName included, see
// Request.SANs), so a signer that copies names from the CSR and one that takes them from
// request parameters give the same certificate.
func NewCSR(r Request, key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("new CSR: no key")
	}
	dns, ips := r.SANs()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: r.CommonName},
		DNSNames:    dns,
		IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("new CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// ParsePrivateKey reads the first private key in PEM text: PKCS#8 as NewKey writes it, or
// the older "EC PRIVATE KEY" and "RSA PRIVATE KEY" forms an operator may bring. Its
// errors never quote the input.
func ParsePrivateKey(pemText string) (crypto.Signer, error) {
	rest := []byte(pemText)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var key any
		var err error
		switch block.Type {
		case pemPrivateKey:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			// The parser's message names the format, never the bytes.
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parse %s: a %T cannot sign", block.Type, key)
		}
		return signer, nil
	}
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
