package consumer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// TLSOptions tune a TLSCertificates. The zero value is fine.
type TLSOptions struct {
	// ReadTimeout bounds one Get of the cache when the handshake carries no deadline of
	// its own. Zero: DefaultReadTimeout.
	ReadTimeout time.Duration
	// OnError, when set, is called when the last good certificate is served instead of
	// the current version: once per version that cannot be used as a certificate (a
	// field missing, a PEM that does not parse, a key that is not the certificate's;
	// version names it), and at each handshake while the Cache cannot read the store at
	// all (past its MaxStale; version is the one served). It names the secret and the
	// version; it never carries material.
	OnError func(id secret.ID, version secret.VersionToken, err error)
	// Now is the clock that decides whether the last good certificate is still valid;
	// time.Now when nil.
	Now func() time.Time
}

// TLSCertificates serves the current version of a certificate secret (fields
// certificate, private_key and ca_chain, as the localca and vaultpki rotators write
// them; see package rotators/certs) to crypto/tls, for servers (GetCertificate) and
// for clients presenting a certificate (GetClientCertificate). Set its methods on a
// tls.Config instead of Certificates:
//
//	certs := consumer.NewTLSCertificates(cache, "prod/api/tls", consumer.TLSOptions{})
//	srv := &http.Server{TLSConfig: &tls.Config{GetCertificate: certs.GetCertificate}}
//	client := &tls.Config{RootCAs: pool, GetClientCertificate: certs.GetClientCertificate}
//
// Every handshake asks the Cache, so a new certificate is served from the first
// handshake after the Cache reads the new version (after its TTL, or at once after
// Invalidate). Connections already established keep the certificate they were set up
// with: TLS does not swap certificates mid-connection. The old certificate stays valid
// until it expires; a rotation also lists it in the CA's CRL, but only peers that check
// the CRL refuse it there (Go's crypto/tls and most clients do not), so keep
// certificate lifetimes short. Keep the Cache's TTL well under the rotation's grace period, as for
// any credential, so that new connections have moved to the new certificate before the
// old one is revoked.
//
// The parsed certificate is kept per version: the PEM is parsed once, when the cache
// hands out a version not seen before. When the store cannot be read, the Cache serves
// the last good value while MaxStale allows (its stale-on-error); past that, this serves
// the last good certificate until it expires, reporting through OnError, because a
// server that refuses every handshake is worse than one presenting a certificate that
// is still within its validity. A version whose material is not a usable certificate is
// parsed once and reported through OnError while the last good certificate is served,
// as long as that one has not expired.
//
// It serves one certificate whatever name the peer asks for; a server with several
// names and one TLSCertificates each picks one by hello.ServerName in its own
// GetCertificate. It is safe for concurrent use.
type TLSCertificates struct {
	cache *Cache
	id    secret.ID
	opts  TLSOptions

	mu   sync.Mutex
	last *parsedCertificate // the newest version that parsed; nil before the first
	bad  *failedVersion     // the newest version that did not parse; nil when none
}

// failedVersion is a version refused as a certificate, kept so that it is parsed and
// reported once, not at every handshake.
type failedVersion struct {
	token  secret.VersionToken
	number int
	err    error
}

// parsedCertificate is one version's certificate, ready for crypto/tls.
type parsedCertificate struct {
	token  secret.VersionToken
	number int
	cert   *tls.Certificate
}

// NewTLSCertificates returns the certificate hooks for secret id read through cache.
func NewTLSCertificates(cache *Cache, id secret.ID, opts TLSOptions) *TLSCertificates {
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &TLSCertificates{cache: cache, id: id, opts: opts}
}

// GetCertificate is a tls.Config.GetCertificate for a server: the current certificate,
// whatever the client hello asks for.
func (t *TLSCertificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return t.Certificate(helloContext(hello))
}

// GetClientCertificate is a tls.Config.GetClientCertificate for a client that presents
// a certificate (mutual TLS): the current certificate, whatever CAs the server names.
func (t *TLSCertificates) GetClientCertificate(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	ctx := context.Background()
	if req != nil {
		ctx = req.Context()
	}
	return t.Certificate(ctx)
}

// Certificate returns the current certificate, parsed once per version. An error names
// the secret and never carries material.
func (t *TLSCertificates) Certificate(ctx context.Context) (*tls.Certificate, error) {
	if t.cache == nil {
		return nil, fmt.Errorf("tls certificate %s: NewTLSCertificates was given no cache", t.id)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.ReadTimeout)
		defer cancel()
	}
	t.mu.Lock()
	last, bad := t.last, t.bad
	t.mu.Unlock()

	v, err := t.cache.Get(ctx, t.id)
	if err != nil {
		// The Cache gave up on the store (past MaxStale, or nothing read yet). A
		// certificate, unlike a password, carries its own end of life: the last good one
		// is served until it expires, so a store outage does not take the server down.
		// Peers that check the CRL refuse it once the rotation has revoked it.
		err = fmt.Errorf("tls certificate: %w", err)
		if !t.usable(last) {
			return nil, err
		}
		t.report(last.token, err)
		return last.cert, nil
	}
	if last != nil && last.token == v.Version.Token && last.number == v.Version.Number {
		return last.cert, nil
	}
	if bad != nil && bad.token == v.Version.Token && bad.number == v.Version.Number {
		// Already parsed and refused (and reported): not again at every handshake.
		if !t.usable(last) {
			return nil, bad.err
		}
		return last.cert, nil
	}

	cert, err := tlsCertificate(v.Material)
	if err != nil {
		err = fmt.Errorf("tls certificate %s: version %d (%s): %w", t.id, v.Version.Number, v.Version.Token, err)
		t.mu.Lock()
		t.bad = &failedVersion{token: v.Version.Token, number: v.Version.Number, err: err}
		t.mu.Unlock()
		if !t.usable(last) {
			return nil, err
		}
		t.report(v.Version.Token, err)
		return last.cert, nil
	}
	p := &parsedCertificate{token: v.Version.Token, number: v.Version.Number, cert: cert}
	t.mu.Lock()
	// Two handshakes may parse the same new version at once; either result is the same.
	// One still holding an older value may win the race: the next handshake then parses
	// the newer version again, which costs a parse, never a wrong certificate. (Numbers
	// cannot order them: a rollback serves a lower number as the new current.)
	t.last = p
	t.mu.Unlock()
	return cert, nil
}

// usable reports whether p is a certificate that can still be served: one parsed before
// and not yet expired.
func (t *TLSCertificates) usable(p *parsedCertificate) bool {
	return p != nil && t.opts.Now().Before(p.cert.Leaf.NotAfter)
}

func (t *TLSCertificates) report(version secret.VersionToken, err error) {
	if t.opts.OnError != nil {
		t.opts.OnError(t.id, version, err)
	}
}

// tlsCertificate builds a tls.Certificate from a certificate version's material: the
// leaf and anything after it in the certificate field, then the ca_chain field, in the
// order the rotators' Test step served them in its handshake. The errors of the
// parsers used here never quote their input.
func tlsCertificate(m secret.Material) (*tls.Certificate, error) {
	for _, field := range []string{certs.FieldCertificate, certs.FieldPrivateKey} {
		if m.Get(field).IsZero() {
			return nil, fmt.Errorf("material has no %q field: is this a certificate secret (kinds localca, vaultpki)?", field)
		}
	}
	chain, err := certs.ParseCertificates(m.Get(certs.FieldCertificate).Reveal())
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", certs.FieldCertificate, err)
	}
	if ca := m.Get(certs.FieldCAChain); !ca.IsZero() {
		more, err := certs.ParseCertificates(ca.Reveal())
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", certs.FieldCAChain, err)
		}
		chain = append(chain, more...)
	}
	key, err := certs.ParsePrivateKey(m.Get(certs.FieldPrivateKey).Reveal())
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", certs.FieldPrivateKey, err)
	}
	if !certs.KeyMatches(chain[0], key) {
		return nil, errors.New("the private key is not the certificate's key")
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: chain[0]}, nil
}

// helloContext is the handshake's context, which carries the connection's deadline.
func helloContext(hello *tls.ClientHelloInfo) context.Context {
	if hello == nil {
		return context.Background()
	}
	return hello.Context()
}
