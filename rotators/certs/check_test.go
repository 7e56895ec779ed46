package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

func TestCheckAccepts(t *testing.T) {
	ca := newTestCA(t, "accept CA")
	for name, r := range map[string]Request{
		"ec":             validRequest,
		"rsa":            {CommonName: "rsa.keyturn.test", TTL: time.Hour, KeyType: KeyTypeRSA},
		"IP only":        {IPAddresses: []string{"127.0.0.1"}, TTL: time.Hour},
		"SAN only":       {DNSNames: []string{"only.keyturn.test"}, TTL: time.Hour},
		"wildcard":       {CommonName: "*.keyturn.test", TTL: time.Hour},
		"IP common name": {CommonName: "127.0.0.1", TTL: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			m := ca.issue(t, r, leafOpts{})
			if err := Check(t.Context(), r, m, ca.pool); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestCheckRejects(t *testing.T) {
	ca := newTestCA(t, "reject CA")
	other := newTestCA(t, "other CA")
	now := time.Now()
	good := ca.issue(t, validRequest, leafOpts{})
	swappedKey := ca.issue(t, validRequest, leafOpts{})
	swappedKey[FieldPrivateKey] = good[FieldPrivateKey]

	for name, c := range map[string]struct {
		m       secret.Material
		r       Request
		trusted *x509.CertPool
		kind    error
		says    string
	}{
		"key of another certificate": {m: swappedKey, kind: rotators.ErrCredentialRejected, says: "private key does not belong"},
		"expired": {m: ca.issue(t, validRequest, leafOpts{notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Minute)}),
			kind: rotators.ErrCredentialRejected, says: "expired"},
		"not yet valid": {m: ca.issue(t, validRequest, leafOpts{notBefore: now.Add(10 * time.Minute), notAfter: now.Add(time.Hour)}),
			kind: rotators.ErrCredentialRejected, says: "check the signer's clock"},
		"untrusted CA":           {m: other.issue(t, validRequest, leafOpts{}), kind: rotators.ErrCredentialRejected, says: "does not verify to the trusted CA"},
		"trusted elsewhere only": {m: good, trusted: other.pool, kind: rotators.ErrCredentialRejected, says: "does not verify"},
		"client-only EKU": {m: ca.issue(t, validRequest, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
			kind: rotators.ErrCheckFailed, says: "server_flag"},
		"other common name": {m: ca.issue(t, validRequest, leafOpts{cn: "evil.keyturn.test"}), kind: rotators.ErrCheckFailed, says: `common name is "evil.keyturn.test"`},
		"missing SAN":       {m: ca.issue(t, validRequest, leafOpts{dns: []string{"app.keyturn.test"}}), kind: rotators.ErrCheckFailed, says: "missing api.keyturn.test"},
		"extra SAN": {m: ca.issue(t, validRequest, leafOpts{dns: []string{"app.keyturn.test", "api.keyturn.test", "x.keyturn.test"}}),
			kind: rotators.ErrCheckFailed, says: "not asked for x.keyturn.test"},
		"other IP": {m: ca.issue(t, validRequest, leafOpts{ips: []net.IP{net.IPv4(10, 0, 0, 1)}}), kind: rotators.ErrCheckFailed, says: "IP addresses"},
		"too long": {m: ca.issue(t, validRequest, leafOpts{notBefore: now.Add(-time.Minute), notAfter: now.Add(3 * time.Hour)}),
			kind: rotators.ErrCheckFailed, says: "longer than the 1h0m0s asked"},
		"handshake name": {m: ca.issue(t, Request{CommonName: "app.keyturn.test", TTL: time.Hour}, leafOpts{dns: []string{"other.keyturn.test"}}),
			r: Request{CommonName: "app.keyturn.test", TTL: time.Hour}, kind: rotators.ErrCheckFailed, says: "missing app.keyturn.test"},
		"garbled certificate": {m: secret.Material{FieldCertificate: secret.NewSensitive("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), FieldPrivateKey: good[FieldPrivateKey]},
			kind: rotators.ErrCredentialRejected, says: "certificate"},
		"garbled key": {m: secret.Material{FieldCertificate: good[FieldCertificate], FieldPrivateKey: secret.NewSensitive("not a key")},
			kind: rotators.ErrCredentialRejected, says: "private_key"},
		"no key":  {m: secret.Material{FieldCertificate: good[FieldCertificate]}, kind: rotators.ErrInvalidConfig, says: `no "private_key"`},
		"no pool": {m: good, trusted: nil, kind: rotators.ErrInvalidConfig, says: "no trusted CA pool"},
	} {
		t.Run(name, func(t *testing.T) {
			r := c.r
			if r.TTL == 0 {
				r = validRequest
			}
			trusted := c.trusted
			if trusted == nil && name != "no pool" {
				trusted = ca.pool
			}
			err := Check(t.Context(), r, c.m, trusted)
			if !errors.Is(err, c.kind) {
				t.Fatalf("Check = %v, want %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			for _, other := range []error{rotators.ErrCredentialRejected, rotators.ErrCheckFailed, rotators.ErrInvalidConfig} {
				if other != c.kind && errors.Is(err, other) {
					t.Errorf("error also wraps %v", other)
				}
			}
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			if k := c.m.Get(FieldPrivateKey).Reveal(); len(k) > 20 && strings.Contains(text, k) {
				t.Error("error holds the private key")
			}
		})
	}
}

// The handshake is the one check a static look cannot replace: a chain that verifies when
// the CA is known but that a server cannot present usefully still has to work end to end.
// Here the certificate verifies and has the names, but the handshake asks for a name only
// a wildcard covers, which the check derives itself.
func TestCheckHandshakeUsesServerName(t *testing.T) {
	ca := newTestCA(t, "handshake CA")
	r := Request{CommonName: "*.keyturn.test", TTL: time.Hour}
	if got := r.ServerName(); got != "keyturn-check.keyturn.test" {
		t.Fatalf("ServerName = %q", got)
	}
	m := ca.issue(t, r, leafOpts{})
	c, err := parseMaterial(m)
	if err != nil {
		t.Fatal(err)
	}
	c.trusted = ca.pool
	if err := handshake(t.Context(), c, r.ServerName()); err != nil {
		t.Fatalf("handshake with the wildcard's name: %v", err)
	}
	if err := handshake(t.Context(), c, "elsewhere.example"); err == nil {
		t.Fatal("handshake for a name the certificate lacks succeeded")
	}
	c.trusted = newTestCA(t, "stranger").pool
	if err := handshake(t.Context(), c, r.ServerName()); err == nil {
		t.Fatal("handshake with a client trusting another CA succeeded")
	}
}

func TestCheckHonoursContext(t *testing.T) {
	ca := newTestCA(t, "ctx CA")
	m := ca.issue(t, validRequest, leafOpts{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A cancelled step is not a verdict on the certificate.
	err := Check(ctx, validRequest, m, ca.pool)
	if !errors.Is(err, context.Canceled) || errors.Is(err, rotators.ErrCredentialRejected) {
		t.Fatalf("Check with a cancelled context = %v, want context.Canceled alone", err)
	}
}
