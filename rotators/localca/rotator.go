package localca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// Rotator signs certificates with a CA key held in memory and publishes revocations in
// a CRL file. It is safe for concurrent use, and several Rotators (in one process or
// many) may share a CRL file.
type Rotator struct {
	cfg     Config
	ca      *ca
	crlPath string
	now     func() time.Time
	// killPoint, when set (by tests only), is called at the instants a crash matters
	// between file writes and signing, so a test can end the goroutine there as a killed
	// worker would end.
	killPoint func(name string)
}

// point calls killPoint, if set.
func (r *Rotator) point(name string) {
	if r.killPoint != nil {
		r.killPoint(name)
	}
}

var (
	_ rotators.Minter  = (*Rotator)(nil)
	_ rotators.Renewer = (*Rotator)(nil)
	_ rotators.Sweeper = (*Rotator)(nil)
)

// New checks cfg, after filling in its defaults, and returns a Rotator for it. A CA key
// that does not belong to the CA certificate, or a certificate that may not sign
// certificates and CRLs, wraps rotators.ErrInvalidConfig.
func New(cfg Config) (*Rotator, error) {
	cfg.Request.ApplyDefaults()
	ca, err := cfg.parse(time.Now())
	if err != nil {
		return nil, err
	}
	return &Rotator{cfg: cfg, ca: ca, crlPath: cleanCRLPath(cfg.CRLFile), now: time.Now}, nil
}

// Mint revokes what an interrupted Mint of this version left behind (adding it to the
// CRL), records the new certificate's serial with the version token in the issuance log,
// then makes a key, signs a leaf certificate for it with the CA, reports it through
// req.Minted, and returns certificate, private key and the CA as ca_chain.
func (r *Rotator) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	serial, err := r.reserve(ctx, req)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}

	// Step 3. A fresh key and a leaf with the reserved serial, signed with the CA.
	key, keyPEM, err := certs.NewKey(r.cfg.Request.KeyType, r.cfg.Request.KeyBits)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}
	leaf, err := r.sign(key.Public(), serial)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}
	r.point("after signing")

	// Step 4. Reported at once, though nothing below can fail: the contract is the same
	// for every Minter.
	md := certs.Metadata(leaf)
	if req.Minted != nil {
		req.Minted(md)
	}
	return rotators.Generated{
		Material: secret.Material{
			certs.FieldCertificate: secret.NewSensitive(certs.EncodeCertificates(leaf)),
			certs.FieldPrivateKey:  keyPEM,
			certs.FieldCAChain:     secret.NewSensitive(r.ca.pem),
		},
		Metadata: md,
	}, nil
}

// Sweep revokes, under the CA's lock, every certificate the issuance log records for
// req.Token that no req.Known version holds (and those req.Abandoned names): the search
// Mint runs before it reserves a serial. The rollback of a Create that gave up after the
// CA signed calls it. It returns the serials this call put on the CRL; one listed already
// is not returned again. The token is the identity, so req.Since is not needed.
func (r *Rotator) Sweep(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	unlock, err := r.lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	defer unlock()
	removed, err := r.revokeOrphansLocked(req)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	return removed, nil
}

// reserve runs the first two steps of Mint under the CA's lock, and returns the serial
// of the certificate to sign.
//
// Step 1. Every certificate an interrupted Mint of this version signed but the store
// never got is revoked: the issuance log names them (serials recorded for req.Token that
// no req.Known version holds), and so may req.Abandoned. Their key was lost with the
// interrupted step, but not necessarily before somebody copied it.
//
// Step 2. A new serial is recorded in the log, synced, before any certificate carries
// it: a crash after signing can then never leave a certificate the log does not name.
func (r *Rotator) reserve(ctx context.Context, req rotators.MintRequest) (*big.Int, error) {
	unlock, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := r.revokeOrphansLocked(req); err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	if err := r.recordIssued(serial, req.Token); err != nil {
		return nil, err
	}
	r.point("after recording the serial")
	return serial, nil
}

// sign makes the leaf certificate for pub: the request's names, server and client
// authentication, valid for the TTL but never past the CA.
func (r *Rotator) sign(pub any, serial *big.Int) (*x509.Certificate, error) {
	now := r.now()
	if !r.ca.cert.NotAfter.After(now) {
		return nil, fmt.Errorf("%w: CA %q expired at %s: make a new CA", rotators.ErrInvalidConfig,
			r.ca.cert.Subject.CommonName, r.ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := now.Add(r.cfg.Request.TTL)
	if notAfter.After(r.ca.cert.NotAfter) {
		// A leaf outliving its CA fails verification from the CA's last day on; it is
		// better to renew early, which Due does since it reads the real lifetime.
		notAfter = r.ca.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if r.cfg.Request.KeyType == certs.KeyTypeRSA {
		// RSA key exchange (TLS 1.2 without ECDHE) encrypts to the key.
		usage |= x509.KeyUsageKeyEncipherment
	}
	dns, ips := r.cfg.Request.SANs()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: r.cfg.Request.CommonName},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}, r.ca.cert, pub, r.ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Apply does nothing: a signed certificate is valid from the moment it is signed, and a
// revoked one stays on the CRL, so there is nothing to turn on or restore.
func (r *Rotator) Apply(context.Context, rotators.ApplyRequest) error { return nil }

// Test proves the version's material works: it is the certificate the version recorded,
// the CRL file does not list it, and certs.Check passes with the CA as the only trust
// root. A revoked or mismatched certificate wraps rotators.ErrCredentialRejected.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	_, serial, err := certs.RecordedLeaf(req)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	crl, err := r.readCRL()
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	if crl != nil && listed(crl.RevokedCertificateEntries, serial) {
		return fmt.Errorf("test: %w: certificate %s is on the CRL in %s", rotators.ErrCredentialRejected, certs.FormatSerial(serial), r.crlPath)
	}
	if err := certs.Check(ctx, r.cfg.Request, req.Material, r.ca.pool); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	return nil
}

// Revoke adds the version's serial to the CRL, unless it is Keep's. Revoking a serial
// already listed changes nothing.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	serial, err := versionSerial(req.Version)
	if err != nil {
		return err
	}
	if req.Keep != nil {
		if keep, err := certs.ParseSerial(req.Keep.Metadata[certs.MetadataSerial]); err == nil && keep.Cmp(serial) == 0 {
			return nil
		}
	}
	return r.revokeSerials(ctx, []*big.Int{serial})
}

// Due reports whether version v should be renewed at now: once Request.RenewAt of its
// lifetime has passed (see certs.Due).
func (r *Rotator) Due(v secret.Version, now time.Time) (bool, time.Time) {
	return certs.Due(v, now, r.cfg.Request.RenewAt)
}

// versionSerial returns the serial a version recorded.
func versionSerial(v secret.Version) (*big.Int, error) {
	n, err := certs.VersionSerial(v)
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	return n, nil
}
