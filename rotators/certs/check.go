package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// ClockSkew is how far apart the signer's clock and this worker's may be. Vault backdates
// NotBefore by 30 seconds for the same reason; five minutes is the tolerance Kerberos and
// most TLS stacks settle on.
const ClockSkew = 5 * time.Minute

// failure is what one check found wrong: kind is rotators.ErrCredentialRejected when the
// certificate does not work, rotators.ErrCheckFailed when it works but is not what the
// inventory asked for.
type failure struct {
	kind error
	msg  string
}

// checked is the parsed material Check works on.
type checked struct {
	leaf    *x509.Certificate
	chain   []*x509.Certificate
	key     crypto.Signer
	trusted *x509.CertPool
}

// Check proves that material m is a working certificate for r, trusted through the CA
// pool trusted alone (never the system roots). It runs, in order and up to the first
// failure:
//
//  1. the private key is the one of the certificate;
//  2. the validity window: NotBefore no later than now plus ClockSkew, NotAfter in the
//     future;
//  3. the chain (the certificate field's extra certificates and ca_chain as
//     intermediates) verifies to trusted, and allows server authentication;
//  4. the subject CN and the SANs are exactly r's (see Request.SANs);
//  5. the lifetime is no longer than r.TTL plus ClockSkew;
//  6. a TLS handshake against a listener on 127.0.0.1 serving the certificate and chain,
//     with a client that trusts only trusted and asks for r.ServerName(), succeeds.
//
// 1, 2, 3 and 6 wrap rotators.ErrCredentialRejected; 4, 5 and a certificate whose
// extended key usage excludes servers wrap rotators.ErrCheckFailed (the signer's policy
// made something else than the inventory describes, which a retry does not change). Missing material fields wrap rotators.ErrInvalidConfig. No error
// carries the private key.
func Check(ctx context.Context, r Request, m secret.Material, trusted *x509.CertPool) error {
	return check(ctx, r, m, trusted, time.Now())
}

func check(ctx context.Context, r Request, m secret.Material, trusted *x509.CertPool, now time.Time) error {
	if trusted == nil {
		return fmt.Errorf("check certificate: %w: no trusted CA pool", rotators.ErrInvalidConfig)
	}
	c, err := parseMaterial(m)
	if err != nil {
		return err
	}
	c.trusted = trusted
	for _, step := range []func(checked, Request, time.Time) *failure{
		keyMatches, validityWindow, chainVerifies, namesMatch, lifetimeFits,
	} {
		if f := step(c, r, now); f != nil {
			return fmt.Errorf("check certificate %s: %w: %s", FormatSerial(c.leaf.SerialNumber), f.kind, f.msg)
		}
	}
	if err := handshake(ctx, c, r.ServerName()); err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the certificate.
			return fmt.Errorf("check certificate %s: TLS handshake: %w", FormatSerial(c.leaf.SerialNumber), ctx.Err())
		}
		return fmt.Errorf("check certificate %s: %w: TLS handshake as %q: %w", FormatSerial(c.leaf.SerialNumber), rotators.ErrCredentialRejected, r.ServerName(), err)
	}
	return nil
}

// parseMaterial reads the three fields. A field that is missing is a wiring problem; one
// that does not parse is a credential that does not work.
func parseMaterial(m secret.Material) (checked, error) {
	var c checked
	for _, field := range []string{FieldCertificate, FieldPrivateKey} {
		if m.Get(field).IsZero() {
			return c, fmt.Errorf("check certificate: %w: material has no %q", rotators.ErrInvalidConfig, field)
		}
	}
	certs, err := ParseCertificates(m.Get(FieldCertificate).Reveal())
	if err != nil {
		return c, fmt.Errorf("check certificate: %w: field %q: %w", rotators.ErrCredentialRejected, FieldCertificate, err)
	}
	c.leaf, c.chain = certs[0], certs[1:]
	if chain := m.Get(FieldCAChain); !chain.IsZero() {
		more, err := ParseCertificates(chain.Reveal())
		if err != nil {
			return c, fmt.Errorf("check certificate: %w: field %q: %w", rotators.ErrCredentialRejected, FieldCAChain, err)
		}
		c.chain = append(c.chain, more...)
	}
	c.key, err = ParsePrivateKey(m.Get(FieldPrivateKey).Reveal())
	if err != nil {
		return c, fmt.Errorf("check certificate: %w: field %q: %w", rotators.ErrCredentialRejected, FieldPrivateKey, err)
	}
	return c, nil
}

func keyMatches(c checked, _ Request, _ time.Time) *failure {
	if !KeyMatches(c.leaf, c.key) {
		return &failure{rotators.ErrCredentialRejected, "the private key does not belong to the certificate"}
	}
	return nil
}

func validityWindow(c checked, _ Request, now time.Time) *failure {
	switch {
	case c.leaf.NotBefore.After(now.Add(ClockSkew)):
		return &failure{rotators.ErrCredentialRejected, fmt.Sprintf("not valid before %s, more than %s from now: check the signer's clock",
			c.leaf.NotBefore.UTC().Format(time.RFC3339), ClockSkew)}
	case !c.leaf.NotAfter.After(now):
		return &failure{rotators.ErrCredentialRejected, fmt.Sprintf("expired at %s", c.leaf.NotAfter.UTC().Format(time.RFC3339))}
	case !c.leaf.NotAfter.After(c.leaf.NotBefore):
		return &failure{rotators.ErrCredentialRejected, "NotAfter is not after NotBefore"}
	}
	return nil
}

func chainVerifies(c checked, _ Request, now time.Time) *failure {
	inter := x509.NewCertPool()
	for _, ca := range c.chain {
		inter.AddCert(ca)
	}
	_, err := c.leaf.Verify(x509.VerifyOptions{
		Roots:         c.trusted,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage {
		// Trusted, but not for servers: the signer's policy, which no retry changes.
		return &failure{rotators.ErrCheckFailed, fmt.Sprintf("may not be used for TLS servers (%v): the signer must allow server authentication (in Vault, the role's server_flag)", err)}
	}
	if err != nil {
		return &failure{rotators.ErrCredentialRejected, fmt.Sprintf("does not verify to the trusted CA: %v", err)}
	}
	return nil
}

func namesMatch(c checked, r Request, _ time.Time) *failure {
	var problems []string
	if r.CommonName != "" && !strings.EqualFold(c.leaf.Subject.CommonName, r.CommonName) {
		problems = append(problems, fmt.Sprintf("common name is %q, want %q", c.leaf.Subject.CommonName, r.CommonName))
	}
	wantDNS, wantIPs := r.SANs()
	if missing, extra := diffNames(lower(wantDNS), lower(c.leaf.DNSNames)); len(missing)+len(extra) > 0 {
		problems = append(problems, nameDiff("DNS names", missing, extra))
	}
	if missing, extra := diffNames(ipStrings(wantIPs), ipStrings(c.leaf.IPAddresses)); len(missing)+len(extra) > 0 {
		problems = append(problems, nameDiff("IP addresses", missing, extra))
	}
	if len(problems) > 0 {
		return &failure{rotators.ErrCheckFailed, strings.Join(problems, "; ") +
			": the signer's policy changed the names; allow them there, or make the inventory's names match"}
	}
	return nil
}

func lifetimeFits(c checked, r Request, _ time.Time) *failure {
	if r.TTL <= 0 {
		return nil
	}
	life := c.leaf.NotAfter.Sub(c.leaf.NotBefore)
	if life > r.TTL+ClockSkew {
		return &failure{rotators.ErrCheckFailed, fmt.Sprintf("valid for %s, longer than the %s asked: lower the signer's TTL, or raise ttl in the inventory",
			life.Round(time.Second), r.TTL)}
	}
	return nil
}

// diffNames returns the names in want but not in got, and in got but not in want.
func diffNames(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}

func nameDiff(what string, missing, extra []string) string {
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "not asked for "+strings.Join(extra, ", "))
	}
	return what + ": " + strings.Join(parts, "; ")
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
