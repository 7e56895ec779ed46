package certs

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
)

// Key types a Request may name.
const (
	// KeyTypeEC is ECDSA on P-256, the default: small, fast, accepted everywhere TLS 1.2 is.
	KeyTypeEC = "ec"
	// KeyTypeRSA is RSA with Request.KeyBits bits, for consumers that cannot use ECDSA.
	KeyTypeRSA = "rsa"
)

// Defaults ApplyDefaults fills in.
const (
	DefaultKeyType = KeyTypeEC
	DefaultRSABits = 2048
	// DefaultRenewAt renews at two thirds of the lifetime, as cert-manager does: a
	// failed renewal then still has a third of the lifetime to be retried and fixed.
	DefaultRenewAt = 2.0 / 3
)

// Limits Validate enforces.
const (
	// MinRSABits: shorter RSA keys are refused by current browsers and by NIST guidance.
	MinRSABits = 2048
	// maxRSABits bounds key generation time on a worker (8192 takes seconds).
	maxRSABits = 8192
	// maxCommonNameLen is ub-common-name in RFC 5280; longer names belong in SANs.
	maxCommonNameLen = 64
	// maxDNSNameLen is the longest name DNS can carry.
	maxDNSNameLen = 253
)

// Request is the certificate an inventory entry asks for. The same Request is used to
// make the CSR (or the template) and to check what came back.
type Request struct {
	// CommonName is the subject CN. Optional when DNSNames or IPAddresses are set; when
	// set and not an IP address, it is also a DNS SAN, since TLS clients ignore the CN.
	CommonName string
	// DNSNames are the DNS subject alternative names, besides CommonName.
	DNSNames []string
	// IPAddresses are the IP subject alternative names, in text form.
	IPAddresses []string
	// TTL is the requested validity. Required: a certificate's life is what its
	// renewal is timed by.
	TTL time.Duration
	// KeyType is KeyTypeEC (ECDSA P-256, the default) or KeyTypeRSA.
	KeyType string
	// KeyBits is the RSA modulus size: 2048 (the default), 3072, 4096 or 8192. With
	// KeyTypeEC it must be 0 or 256.
	KeyBits int
	// RenewAt is the share of the lifetime after which a certificate is due for
	// renewal, strictly between 0 and 1. Defaults to DefaultRenewAt.
	RenewAt float64
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (r *Request) ApplyDefaults() {
	if r.KeyType == "" {
		r.KeyType = DefaultKeyType
	}
	if r.KeyType == KeyTypeRSA && r.KeyBits == 0 {
		r.KeyBits = DefaultRSABits
	}
	if r.RenewAt == 0 {
		r.RenewAt = DefaultRenewAt
	}
}

// Validate reports every problem with the request at once, in one error wrapping
// rotators.ErrInvalidConfig; each names the inventory field and how to fix it. Fields
// that have defaults may be left empty.
func (r Request) Validate() error {
	problems := r.Problems()
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("certificate request: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}

// Problems lists what Validate reports, one sentence each, for a kind that folds them
// into its own configuration error.
func (r Request) Problems() []string {
	r.ApplyDefaults() // r is a copy: the caller's value is not changed
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if r.CommonName == "" && len(r.DNSNames) == 0 && len(r.IPAddresses) == 0 {
		add("common_name, alt_names and ip_sans are all empty: set common_name to the name clients connect to")
	}
	if r.CommonName != "" {
		switch {
		case len(r.CommonName) > maxCommonNameLen:
			add("common_name %q is longer than %d characters: use a shorter one and put long names in alt_names", r.CommonName, maxCommonNameLen)
		case net.ParseIP(r.CommonName) == nil:
			if msg := dnsNameProblem(r.CommonName); msg != "" {
				add("common_name %q %s", r.CommonName, msg)
			}
		}
	}
	for _, name := range r.DNSNames {
		if msg := dnsNameProblem(name); msg != "" {
			add("alt_names entry %q %s", name, msg)
		}
	}
	for _, ip := range r.IPAddresses {
		if net.ParseIP(ip) == nil {
			add("ip_sans entry %q is not an IP address: write it like 10.0.0.5 or fd00::5, and put host names in alt_names", ip)
		}
	}
	if r.TTL <= 0 {
		add("ttl is %s: set how long each certificate is valid, e.g. 720h", r.TTL)
	} else if r.TTL < time.Minute {
		add("ttl %s is shorter than a minute: a certificate would expire before it could be rotated; use at least 1h", r.TTL)
	}
	switch r.KeyType {
	case KeyTypeEC:
		if r.KeyBits != 0 && r.KeyBits != 256 {
			add("key_bits %d does not go with key_type ec (always P-256): remove key_bits, or set key_type rsa", r.KeyBits)
		}
	case KeyTypeRSA:
		if msg := rsaBitsProblem(r.KeyBits); msg != "" {
			add("key_bits %s", msg)
		}
	default:
		add("key_type %q is not %q or %q", r.KeyType, KeyTypeEC, KeyTypeRSA)
	}
	if !(r.RenewAt > 0 && r.RenewAt < 1) {
		add("renew_at %g is not strictly between 0 and 1: it is the share of a certificate's lifetime after which it is renewed, e.g. 0.67", r.RenewAt)
	}
	return problems
}

// rsaBitsProblem says what is wrong with an RSA key size, or returns "".
func rsaBitsProblem(bits int) string {
	switch bits {
	case 2048, 3072, 4096, 8192:
		return ""
	}
	if bits < MinRSABits {
		return fmt.Sprintf("%d is below the minimum of %d for rsa: use 2048, 3072 or 4096", bits, MinRSABits)
	}
	return fmt.Sprintf("%d is not a supported rsa size: use 2048, 3072, 4096 or %d", bits, maxRSABits)
}

// dnsNameProblem says what is wrong with a DNS name, or returns "". It is lenient on
// purpose (the signer's policy is the real judge) and catches what is surely a mistake:
// a URL, a space, an empty label.
func dnsNameProblem(name string) string {
	host := strings.TrimPrefix(name, "*.")
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxDNSNameLen:
		return fmt.Sprintf("is longer than %d characters", maxDNSNameLen)
	case strings.Contains(name, "://"):
		return "is a URL: give the host name alone, e.g. api.example.com"
	case strings.ContainsAny(name, " \t\r\n/:@"):
		return "holds a character a host name cannot: give the host name alone, e.g. api.example.com"
	case strings.Contains(host, "*"):
		return "has a wildcard that is not the whole first label: use *.example.com"
	case strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, ".."):
		return "has an empty label: remove the leading, trailing or doubled dot"
	}
	return ""
}

// SANs returns the subject alternative names a certificate for r carries: DNSNames and
// IPAddresses, plus CommonName (as a DNS name, or as an IP address when it is one) unless
// already listed. Names are compared without regard to case.
func (r Request) SANs() (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	addDNS := func(name string) {
		key := strings.ToLower(name)
		if name == "" || seen[key] {
			return
		}
		seen[key] = true
		dns = append(dns, name)
	}
	addIP := func(ip net.IP) {
		for _, have := range ips {
			if have.Equal(ip) {
				return
			}
		}
		ips = append(ips, ip)
	}
	if ip := net.ParseIP(r.CommonName); ip != nil {
		addIP(ip)
	} else {
		addDNS(r.CommonName)
	}
	for _, name := range r.DNSNames {
		addDNS(name)
	}
	for _, s := range r.IPAddresses {
		if ip := net.ParseIP(s); ip != nil {
			addIP(ip)
		}
	}
	return dns, ips
}

// ServerName is the name the TLS check connects with: CommonName, or the first SAN. A
// wildcard gets a concrete first label, since a client never asks for "*".
func (r Request) ServerName() string {
	name := r.CommonName
	if name == "" && len(r.DNSNames) > 0 {
		name = r.DNSNames[0]
	}
	if name == "" && len(r.IPAddresses) > 0 {
		name = r.IPAddresses[0]
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = "keyturn-check." + rest
	}
	return name
}
