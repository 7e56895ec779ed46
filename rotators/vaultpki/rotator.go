package vaultpki

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// caTimeout bounds the read of the CA certificate in New, which has no context of its own.
const caTimeout = 30 * time.Second

// maxResponseBytes bounds what is read from a raw endpoint (the CA, the CRL). A CRL of
// Vault's default max_crl_entries (100000) is a few megabytes.
const maxResponseBytes = 64 << 20

// Rotator signs certificates with one Vault PKI role. It is safe for concurrent use.
type Rotator struct {
	cfg     Config
	client  *api.Client
	addr    string
	trusted *x509.CertPool
	// cache holds what the orphan scan read of the mount's certificates.
	cache certCache
}

var (
	_ rotators.Minter  = (*Rotator)(nil)
	_ rotators.Renewer = (*Rotator)(nil)
	_ rotators.Sweeper = (*Rotator)(nil)
)

// New checks cfg, after filling in its defaults, and returns a Rotator that talks to
// Vault through client, whose token must hold the policy in policy.hcl. When cfg.CAPEM is
// empty it reads the mount's CA from <mount>/ca/pem (Vault serves it without a token).
func New(cfg Config, client *api.Client) (*Rotator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("vaultpki: %w: no Vault client", rotators.ErrInvalidConfig)
	}
	r := &Rotator{cfg: cfg, client: client, addr: client.Address()}
	caPEM := cfg.CAPEM
	if len(caPEM) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), caTimeout)
		defer cancel()
		var err error
		if caPEM, err = r.readCA(ctx); err != nil {
			return nil, err
		}
	}
	pool, _, err := certs.PoolFromPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("vaultpki: %w: CA certificate: %w; set ca_file to the PEM of the CA consumers trust", rotators.ErrInvalidConfig, err)
	}
	r.trusted = pool
	return r, nil
}

// readCA reads the mount's default issuer certificate.
func (r *Rotator) readCA(ctx context.Context) ([]byte, error) {
	path := r.cfg.Mount + "/ca/pem"
	body, err := r.readRaw(ctx, path)
	if err != nil {
		return nil, r.explain(err, "read the CA certificate", path, capRead, "")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, fmt.Errorf("vaultpki: %w: mount %q at %s has no CA certificate: generate or import one (vault write %s/root/generate/internal ...), or set ca_file",
			rotators.ErrInvalidConfig, r.cfg.Mount, r.addr, r.cfg.Mount)
	}
	return body, nil
}

// readRaw GETs a path whose answer is not Vault's JSON envelope (PEM, DER).
func (r *Rotator) readRaw(ctx context.Context, path string) ([]byte, error) {
	resp, err := r.client.Logical().ReadRawWithContext(ctx, path)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	return body, nil
}

// Mint revokes what an interrupted Mint of this version left behind, then makes a key here, sends Vault
// only a CSR for it (POST <mount>/sign/<role>), reports the new certificate through
// req.Minted as soon as it exists, and returns certificate, private key and CA chain.
func (r *Rotator) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	// Step 1. An abandoned certificate's key is lost, so nobody can use it, but anybody
	// who copied the key before the crash could: revoke it before making another. Vault
	// itself says which they are (see orphanSerials); the heartbeat's hint is one source.
	if _, err := r.revokeOrphans(ctx, req); err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}

	// Step 2. The key is made here and never leaves the worker except into the store.
	key, keyPEM, err := certs.NewKey(r.cfg.Request.KeyType, r.cfg.Request.KeyBits)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}
	csr, err := certs.NewCSR(r.cfg.Request, key)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}

	// Step 3. Names go both in the CSR and as parameters, so a role that takes them from
	// either (use_csr_common_name, use_csr_sans) signs the same certificate.
	path := r.cfg.Mount + "/sign/" + r.cfg.Role
	sec, err := r.client.Logical().WriteWithContext(ctx, path, map[string]any{
		"csr":         string(csr),
		"common_name": r.cfg.Request.CommonName,
		"alt_names":   strings.Join(r.cfg.Request.DNSNames, ","),
		"ip_sans":     strings.Join(r.cfg.Request.IPAddresses, ","),
		"ttl":         fmt.Sprintf("%ds", int64(r.cfg.Request.TTL/time.Second)),
		"format":      "pem",
	})
	if err != nil {
		fix := ""
		if re := responseError(err, 400); re != nil {
			fix = r.signFix(re)
		}
		return rotators.Generated{}, r.explain(err, "mint: sign", path, capUpdate, fix)
	}
	if sec == nil || sec.Data == nil {
		return rotators.Generated{}, fmt.Errorf("mint: sign (%s at %s): empty answer", path, r.addr)
	}
	certPEM, _ := sec.Data["certificate"].(string)
	leafs, err := certs.ParseCertificates(certPEM)
	if err != nil {
		// Vault made something: report its serial so a retry revokes it.
		if serial, _ := sec.Data["serial_number"].(string); serial != "" && req.Minted != nil {
			req.Minted(map[string]string{certs.MetadataSerial: serial})
		}
		return rotators.Generated{}, fmt.Errorf("mint: sign (%s at %s): the answer holds no certificate: %w", path, r.addr, err)
	}
	leaf := leafs[0]

	// Step 4. Before anything else can fail, so an interrupted step can revoke it.
	md := certs.Metadata(leaf)
	if req.Minted != nil {
		req.Minted(md)
	}
	if !certs.KeyMatches(leaf, key) {
		return rotators.Generated{}, fmt.Errorf("mint: sign (%s at %s): Vault returned a certificate for another key", path, r.addr)
	}

	material := secret.Material{
		certs.FieldCertificate: secret.NewSensitive(certs.EncodeCertificates(leaf)),
		certs.FieldPrivateKey:  keyPEM,
	}
	// Left out rather than stored empty when Vault sent no chain; the trusted CA still
	// verifies the leaf.
	if chain := caChain(sec.Data); chain != "" {
		material[certs.FieldCAChain] = secret.NewSensitive(chain)
	}
	return rotators.Generated{Material: material, Metadata: md}, nil
}

// caChain joins the chain Vault returned with a signature: ca_chain (the issuer and the
// CAs above it that Vault knows), or issuing_ca alone from older versions.
func caChain(data map[string]any) string {
	var parts []string
	if list, ok := data["ca_chain"].([]any); ok {
		for _, item := range list {
			if s, ok := item.(string); ok && strings.TrimSpace(s) != "" {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
	}
	if len(parts) == 0 {
		if s, ok := data["issuing_ca"].(string); ok && strings.TrimSpace(s) != "" {
			parts = append(parts, strings.TrimSpace(s))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "\n") + "\n"
}

// Apply does nothing: a signed certificate is valid from the moment Vault signs it, and
// a revoked one cannot be un-revoked, so a rollback never restores a revoked version
// here; it keeps the version that is still valid.
func (r *Rotator) Apply(context.Context, rotators.ApplyRequest) error { return nil }

// Test proves the version's material works: it is the certificate the version recorded,
// Vault has not revoked it (GET <mount>/cert/<serial>), and certs.Check passes with the
// mount's CA as the only trust root. A revoked or mismatched certificate wraps
// rotators.ErrCredentialRejected.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	_, n, err := certs.RecordedLeaf(req)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	serial := certs.FormatSerial(n)
	if err := r.checkNotRevoked(ctx, serial); err != nil {
		return err
	}
	if err := certs.Check(ctx, r.cfg.Request, req.Material, r.trusted); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	return nil
}

// checkNotRevoked asks Vault about the serial. Vault forgets a certificate only when the
// role has no_store set (then it could never be revoked, which is a configuration error)
// or after tidy removed it past expiry (which Check rejects anyway).
func (r *Rotator) checkNotRevoked(ctx context.Context, serial string) error {
	path := r.cfg.Mount + "/cert/" + serial
	sec, err := r.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return r.explain(err, "test: look up certificate", path, capRead, "")
	}
	if sec == nil || sec.Data == nil {
		return fmt.Errorf("test: %w: Vault at %s has no record of certificate %s on mount %q: role %s must store certificates (no_store false) so they can be revoked",
			rotators.ErrInvalidConfig, r.addr, serial, r.cfg.Mount, r.cfg.Role)
	}
	if n := intField(sec.Data["revocation_time"]); n != 0 {
		return fmt.Errorf("test: %w: certificate %s was revoked in Vault at %s",
			rotators.ErrCredentialRejected, serial, time.Unix(n, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// Due reports whether version v should be renewed at now: once Request.RenewAt of its
// lifetime has passed (see certs.Due).
func (r *Rotator) Due(v secret.Version, now time.Time) (bool, time.Time) {
	return certs.Due(v, now, r.cfg.Request.RenewAt)
}

// versionSerial returns the serial a version recorded, in Vault's form.
func versionSerial(v secret.Version) (string, error) {
	n, err := certs.VersionSerial(v)
	if err != nil {
		return "", fmt.Errorf("vaultpki: %w", err)
	}
	return certs.FormatSerial(n), nil
}

// intField reads a number from Vault's JSON, which the client decodes as json.Number.
func intField(v any) int64 {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		if err != nil {
			return 0
		}
		return i
	case float64:
		return int64(n)
	case int64:
		return n
	case int:
		return int64(n)
	}
	return 0
}
