package httpapi

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrNoCertificate is ParseCABundle's error for a bundle without a single certificate.
var ErrNoCertificate = errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")

// ParseCABundle reads PEM-encoded CA certificates, the contents of an inventory's
// httpapi.ca_file, into a pool. Blocks of other types (a private key pasted by mistake)
// are skipped; a CERTIFICATE block that does not parse is an error naming its line, and
// so is a bundle with no certificate at all.
func ParseCABundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	found := 0
	rest := data
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				line := 1 + bytes.Count(data[:len(data)-len(rest)], []byte("\n"))
				// The PEM may have text before the block; count from where the block starts.
				if i := bytes.Index(rest, []byte("-----BEGIN")); i > 0 {
					line += bytes.Count(rest[:i], []byte("\n"))
				}
				return nil, fmt.Errorf("the certificate at line %d does not parse: %w", line, err)
			}
			pool.AddCert(cert)
			found++
		}
		rest = next
	}
	if found == 0 {
		return nil, ErrNoCertificate
	}
	return pool, nil
}

// clientWithCAs returns an HTTP client that trusts only the CAs in pool, for an API whose
// certificate a private CA signs. Its transport is a copy of the default one (proxy from
// the environment, connection pooling), with TLS 1.2 at least.
func clientWithCAs(pool *x509.CertPool, timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport, Timeout: timeout}
}
