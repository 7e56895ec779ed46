package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// backdate moves NotBefore into the past so a consumer whose clock runs a little behind
// accepts a certificate at once; Vault uses the same 30 seconds.
const backdate = 30 * time.Second

// NewCA makes a self-signed ECDSA P-256 CA valid for validity from now, for `keyturn
// dev` to seed the store with. It may sign leaf certificates and CRLs, not other CAs
// (path length 0). It returns the certificate and its key as PKCS#8 PEM.
func NewCA(commonName string, validity time.Duration) (certPEM []byte, keyPEM secret.Sensitive, err error) {
	if commonName == "" {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: %w: the common name is empty", rotators.ErrInvalidConfig)
	}
	if validity <= 0 {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: %w: validity %s is not positive", rotators.ErrInvalidConfig, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		// SubjectKeyId is left empty: Go derives it from the key for a CA template.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: sign: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, secret.Sensitive{}, fmt.Errorf("new CA: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = secret.NewSensitive(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certPEM, keyPEM, nil
}

// serialLimit is 2^128: serials carry 128 random bits, more than the 64 the CA/Browser
// Forum asks for, and well within the 20 octets RFC 5280 allows.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// newSerial returns a random positive serial below serialLimit.
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 { // RFC 5280: serials are positive
			return n, nil
		}
	}
}
