package httpapi

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/httpspans"
)

// Names of the material fields and the metadata key.
const (
	// FieldKeyID is the material field, and the metadata key, holding the key's ID. The
	// ID is an identifier, not a secret, which is why it may be in both.
	FieldKeyID = "key_id"
	// FieldKeySecret is the material field holding the key's secret.
	FieldKeySecret = "key_secret"
	// MetadataKeyID is the metadata key holding the key's ID.
	MetadataKeyID = FieldKeyID
)

// maxKeyIDLen bounds the key IDs the rotator accepts from an API: an ID goes into
// metadata, an Idempotency-Key header and URLs, none of which should hold a document.
const maxKeyIDLen = 256

// Rotator rotates the API key of one account of one HTTP API. It holds no connection
// state beyond the HTTP client's pool, so it can be shared by concurrent rotations.
type Rotator struct {
	cfg        Config
	client     *http.Client
	create     compiledCall
	test       compiledCall
	revoke     compiledCall
	inUse      *compiledUsage // nil unless Config.InUse is set
	idPath     jsonPath
	secretPath jsonPath
	caPool     *x509.CertPool // from CABundle; nil for the system's roots
}

var _ rotators.Minter = (*Rotator)(nil)

// New checks cfg, after filling in its defaults, and returns a Rotator for it. Every
// problem is reported at once, in one error wrapping rotators.ErrInvalidConfig. A
// *Rotator never reports usage, even with cfg.InUse set: Build returns the rotator a
// worker runs, which does exactly when InUse is declared.
func New(cfg Config) (*Rotator, error) {
	r, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	// A copy, so that the caller's client is not changed. Redirects are not followed: a
	// POST turned into a GET would misreport, and headers such as X-Api-Key would follow
	// the redirect to wherever it points.
	var client http.Client
	switch {
	case cfg.Client != nil:
		client = *cfg.Client
	case r.caPool != nil:
		client = *clientWithCAs(r.caPool, r.cfg.Timeout)
	default:
		client.Timeout = r.cfg.Timeout
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Transport = httpspans.Transport(client.Transport, cfg.TracerProvider, httpspans.SchemeHostPath)
	r.client = &client
	return r, nil
}

// compile applies cfg's defaults, checks it and parses its templates and paths.
func compile(cfg Config) (*Rotator, error) {
	cfg.ApplyDefaults()
	var p problems
	r := &Rotator{cfg: cfg}
	r.create = compileCall(&p, "create", cfg.Create, cfg.Admin)
	r.test = compileCall(&p, "test", cfg.Test, cfg.Admin)
	r.revoke = compileCall(&p, "revoke", cfg.Revoke, cfg.Admin)
	if cfg.InUse != nil {
		r.inUse = compileUsage(&p, *cfg.InUse, cfg.Admin)
	}
	var err error
	if r.idPath, err = parsePath(cfg.KeyIDPath); err != nil {
		p.add("key_id", "%v", err)
	}
	if r.secretPath, err = parsePath(cfg.KeySecretPath); err != nil {
		p.add("key_secret", "%v", err)
	}
	if len(cfg.CABundle) > 0 {
		if r.caPool, err = ParseCABundle(cfg.CABundle); err != nil {
			p.add("ca_file", "%v", err)
		}
		if cfg.Client != nil {
			p.add("ca_file", "a CA bundle and a Client do not go together: configure the client's roots instead")
		}
	}
	if cfg.KeyIDPath != "" && cfg.KeyIDPath == cfg.KeySecretPath {
		p.add("key_id", "is the same path as key_secret: the ID is stored as metadata, so it must not be the secret")
	}
	if cfg.Timeout < 0 {
		p.add("timeout", "is negative")
	}
	return r, p.err()
}

// Mint creates a key: it sends Create as the admin with the version token as its
// Idempotency-Key, so a retried Mint gets the same key back from an API that honours the
// header, and reads the key's ID and secret from the response. It reports the ID through
// req.Minted before doing anything else, then deletes every key in req.Abandoned that is
// neither the one it got nor one a req.Known version holds. The Idempotency-Key is what
// makes a killed attempt leave no key behind: the retry gets the key the killed attempt
// made, whether or not a heartbeat ever named it, so there is nothing else to find on
// the API (which this contract cannot list anyway).
func (r *Rotator) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	if err := req.Token.Validate(); err != nil {
		return rotators.Generated{}, fmt.Errorf("httpapi create: %w: %w", rotators.ErrInvalidConfig, err)
	}
	d := Data{SecretID: string(req.SecretID), Token: string(req.Token), admin: r.cfg.Admin}
	res, err := r.send(ctx, r.create, d, string(req.Token), true)
	if err != nil {
		return rotators.Generated{}, err
	}
	if !r.create.succeeded(res.status) {
		return rotators.Generated{}, r.create.adminFailure(res)
	}

	id, key, err := r.parseCreated(res)
	if id != "" && req.Minted != nil {
		// Reported even when the secret could not be read: the key exists, and the next
		// attempt must be able to delete it.
		req.Minted(map[string]string{MetadataKeyID: id})
	}
	if err != nil {
		return rotators.Generated{}, err
	}

	// The key this call got, and the keys of versions the store holds, are in use.
	done := map[string]bool{id: true}
	for _, md := range req.Known {
		done[md[MetadataKeyID]] = true
	}
	for _, md := range req.Abandoned {
		old := md[MetadataKeyID]
		if old == "" || done[old] {
			continue
		}
		done[old] = true
		// Its own idempotency key: one token may have abandoned several keys, and none of
		// their deletions may be mistaken for another's, or for the Revoke of the key
		// this version ends up with (token + "/revoke").
		if err := r.revokeKey(ctx, req.SecretID, req.Token, old, string(req.Token)+"/revoke/"+old); err != nil {
			return rotators.Generated{}, fmt.Errorf("delete a key an interrupted create left behind: %w", err)
		}
	}
	return rotators.Generated{
		Material: secret.Material{FieldKeyID: secret.NewSensitive(id), FieldKeySecret: key},
		Metadata: map[string]string{MetadataKeyID: id},
	}, nil
}

// parseCreated reads the key's ID and secret from a create response. It returns the ID
// whenever it found a usable one, even with an error about the secret. Errors wrap
// rotators.ErrInvalidConfig (the paths do not fit the API's responses) and never quote
// the response.
func (r *Rotator) parseCreated(res response) (string, secret.Sensitive, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("httpapi create: %s %s: %w: %s", r.create.method, res.target, rotators.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	doc, err := decodeJSON(res.body)
	if err != nil {
		return "", secret.Sensitive{}, fail("%v; a key may have been created that Keyturn cannot delete", err)
	}
	id, err := r.idPath.str(doc)
	if err != nil {
		return "", secret.Sensitive{}, fail("key_id path %q: %v; a key may have been created that Keyturn cannot delete", r.idPath.text, err)
	}
	if err := secret.VersionToken(id).Validate(); err != nil || len(id) > maxKeyIDLen {
		return "", secret.Sensitive{}, fail("key_id path %q: the value is not an ID (printable text of at most %d bytes); a key may have been created that Keyturn cannot delete", r.idPath.text, maxKeyIDLen)
	}
	key, err := r.secretPath.str(doc)
	if err != nil {
		return id, secret.Sensitive{}, fail("key_secret path %q: %v", r.secretPath.text, err)
	}
	if key == id {
		// Reporting this ID as metadata would put the secret in the store's clear text.
		return "", secret.Sensitive{}, fail("key_id path %q and key_secret path %q give the same value; key_id must be the key's public ID", r.idPath.text, r.secretPath.text)
	}
	return id, secret.NewSensitive(key), nil
}

// Apply does nothing. A key works from the moment Create makes it, and an API that
// deleted a key cannot bring it back, so there is nothing to apply and no way to re-enable
// a revoked version: a rollback after Revoke needs a new rotation instead.
func (r *Rotator) Apply(context.Context, rotators.ApplyRequest) error { return nil }

// Test sends the Test call with the version's key ({{.KeyID}} and {{.Secret}}). A success
// status means the key works. 401, 403 or a gone status wrap
// rotators.ErrCredentialRejected; any other 4xx wraps rotators.ErrCheckFailed (the key is
// accepted but may not make the call); server errors, rate limits and network failures
// are plain errors, to be retried.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	id := req.Version.Metadata[MetadataKeyID]
	if fromMaterial := req.Material.Get(FieldKeyID).Reveal(); fromMaterial != "" {
		if id != "" && fromMaterial != id {
			// The secret belongs to some other key: whatever the API says about it says
			// nothing about this version.
			return fmt.Errorf("httpapi test: %w: the material is for another key than the version's", rotators.ErrCredentialRejected)
		}
		id = fromMaterial
	}
	key := req.Material.Get(FieldKeySecret)
	if key.IsZero() {
		return fmt.Errorf("httpapi test: %w: the material has no %s", rotators.ErrInvalidConfig, FieldKeySecret)
	}
	d := Data{SecretID: string(req.Version.SecretID), Token: string(req.Version.Token), KeyID: id, key: key}
	res, err := r.send(ctx, r.test, d, "", false)
	if err != nil {
		return err
	}
	switch s := res.status; {
	case r.test.succeeded(s):
		return nil
	case s == http.StatusUnauthorized || s == http.StatusForbidden || r.test.isGone(s):
		return fmt.Errorf("%w: %w", r.test.statusError(res, ""), rotators.ErrCredentialRejected)
	case transient(s):
		return r.test.statusError(res, "")
	default:
		return fmt.Errorf("%w: %w", r.test.statusError(res, ""), rotators.ErrCheckFailed)
	}
}

// Revoke deletes the version's key with the Revoke call, as the admin, with the version
// token + "/revoke" as the Idempotency-Key. A success or gone status is success, so
// revoking twice is harmless. It never deletes the key of req.Keep. req.EndSessions is
// ignored: an API key has no sessions, and deleting it ends every use of it.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	id := req.Version.Metadata[MetadataKeyID]
	if id == "" {
		// Doing nothing would leave a key working that the operator believes revoked.
		return fmt.Errorf("httpapi revoke: %w: version %d has no %s metadata, so Keyturn cannot tell which key to delete; delete it by hand",
			rotators.ErrInvalidConfig, req.Version.Number, MetadataKeyID)
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataKeyID] == id {
		return nil
	}
	return r.revokeKey(ctx, req.Version.SecretID, req.Version.Token, id, string(req.Version.Token)+"/revoke")
}

// revokeKey sends the Revoke call for one key.
func (r *Rotator) revokeKey(ctx context.Context, id secret.ID, token secret.VersionToken, keyID, idempotencyKey string) error {
	d := Data{SecretID: string(id), Token: string(token), KeyID: keyID, admin: r.cfg.Admin}
	res, err := r.send(ctx, r.revoke, d, idempotencyKey, false)
	if err != nil {
		return err
	}
	if r.revoke.succeeded(res.status) || r.revoke.isGone(res.status) {
		return nil
	}
	return r.revoke.adminFailure(res)
}
