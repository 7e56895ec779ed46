package binding

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/awsiam"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/localca"
	"github.com/keyturn/keyturn/rotators/mariadb"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/rotators/redisacl"
	"github.com/keyturn/keyturn/rotators/vaultpki"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/awsspans"
)

// The rotators of the kinds other than postgres. Each resolves its references (an admin
// token, a CA key) at use time, like the postgres admin password.

func (r *Resolver) awsiam(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.AWSIAM
	if r.backends.AWS == nil {
		return nil, fmt.Errorf("%w: %s: this process has no AWS configuration", rotators.ErrInvalidConfig, s.ID)
	}
	awsCfg, err := r.awsConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: load AWS configuration: %w", s.ID, err)
	}
	return awsiam.New(awsiam.Config{
		UserName: k.User, DeleteInactive: k.DeleteInactive,
		DeleteAfter: k.DeleteAfter, ConsistencyTimeout: k.ConsistencyTimeout,
	}, awsCfg, awsiam.WithThrottle(r.iamThrottle))
}

// awsConfigTTL is how long a loaded AWS configuration is used: long enough that the
// credentials it resolves (a web identity, an instance role) stay in its cache and its
// HTTP connections are reused from one step to the next, short enough that static keys
// rewritten in a shared credentials file are picked up within minutes.
const awsConfigTTL = 5 * time.Minute

// awsConfig returns the worker's AWS configuration, loading it when it has none younger
// than awsConfigTTL. A failed load is not kept. Waiting for another caller's load ends
// with ctx.
func (r *Resolver) awsConfig(ctx context.Context) (aws.Config, error) {
	select {
	case r.awsLoading <- struct{}{}:
		defer func() { <-r.awsLoading }()
	case <-ctx.Done():
		return aws.Config{}, ctx.Err()
	}
	if !r.awsLoadedAt.IsZero() && time.Since(r.awsLoadedAt) < awsConfigTTL {
		return r.awsCfg, nil
	}
	cfg, err := r.backends.AWS(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	awsspans.Instrument(&cfg, r.backends.TracerProvider)
	r.awsCfg, r.awsLoadedAt = cfg, time.Now()
	return cfg, nil
}

func (r *Resolver) httpapi(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.HTTPAPI
	admin, err := r.Reveal(ctx, k.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin credential of %s: %w", s.ID, err)
	}
	call := func(c inventory.HTTPCall) httpapi.Call {
		return httpapi.Call{Method: c.Method, URL: c.URL, Headers: c.Headers, Body: c.Body, Success: c.Success, Gone: c.Gone}
	}
	var caPEM []byte
	if k.CAFile != "" {
		if caPEM, err = os.ReadFile(k.CAFile); err != nil {
			return nil, fmt.Errorf("%w: %s: httpapi.ca_file: %w", rotators.ErrInvalidConfig, s.ID, err)
		}
	}
	var inUse *httpapi.UsageCheck
	if u := k.InUse; u != nil {
		check := u.Check()
		inUse = &check
	}
	// Build, not New: the rotator reports usage to the revoke gate only when in_use is declared.
	return httpapi.Build(httpapi.Config{
		Create: call(k.Create), Test: call(k.Test), Revoke: call(k.Revoke), InUse: inUse,
		KeyIDPath: k.KeyID, KeySecretPath: k.KeySecret,
		Admin: admin, Timeout: k.Timeout, CABundle: caPEM, TracerProvider: r.backends.TracerProvider,
	})
}

func certRequest(c inventory.Certificate) certs.Request {
	return certs.Request{
		CommonName: c.CommonName, DNSNames: c.AltNames, IPAddresses: c.IPSANs,
		TTL: c.TTL, KeyType: c.KeyType, KeyBits: c.KeyBits, RenewAt: c.RenewAt,
	}
}

// vaultClient is the logged-in client of the worker's Vault, shared with the KV store on
// the default mount so there is one login and one token renewal.
type vaultClient interface{ Client() *api.Client }

func (r *Resolver) vaultpki(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.VaultPKI
	store, err := r.vault(ctx, inventory.DefaultVaultMount)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.ID, err)
	}
	vc, ok := store.(vaultClient)
	if !ok {
		return nil, fmt.Errorf("%w: %s: this worker's Vault store gives no API client", rotators.ErrInvalidConfig, s.ID)
	}
	var caPEM []byte
	if k.CAFile != "" {
		if caPEM, err = os.ReadFile(k.CAFile); err != nil {
			return nil, fmt.Errorf("%w: %s: vaultpki.ca_file: %w", rotators.ErrInvalidConfig, s.ID, err)
		}
	}
	return vaultpki.New(vaultpki.Config{Mount: k.Mount, Role: k.Role, Request: certRequest(k.Certificate), CAPEM: caPEM}, vc.Client())
}

func (r *Resolver) localca(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.LocalCA
	cert, err := r.Reveal(ctx, k.CACert)
	if err != nil {
		return nil, fmt.Errorf("CA certificate of %s: %w", s.ID, err)
	}
	key, err := r.Reveal(ctx, k.CAKey)
	if err != nil {
		return nil, fmt.Errorf("CA key of %s: %w", s.ID, err)
	}
	crl := k.CRLFile
	if !filepath.IsAbs(crl) && r.backends.CRLDir != "" {
		crl = filepath.Join(r.backends.CRLDir, crl)
	}
	return localca.New(localca.Config{CACertPEM: []byte(cert.Reveal()), CAKeyPEM: key, CRLFile: crl, Request: certRequest(k.Certificate)})
}

// adminAndCA reads a database kind's admin password and, when the block names one, its
// CA file (field, for the error).
func (r *Resolver) adminAndCA(ctx context.Context, s inventory.Secret, admin inventory.Ref, field, caFile string) (secret.Sensitive, []byte, error) {
	password, err := r.Reveal(ctx, admin)
	if err != nil {
		return secret.Sensitive{}, nil, fmt.Errorf("admin password of %s: %w", s.ID, err)
	}
	if caFile == "" {
		return password, nil, nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return secret.Sensitive{}, nil, fmt.Errorf("%w: %s: %s: %w", rotators.ErrInvalidConfig, s.ID, field, err)
	}
	return password, caPEM, nil
}

func (r *Resolver) redis(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.Redis
	password, caPEM, err := r.adminAndCA(ctx, s, k.Admin.Password, "redis.ca_file", k.CAFile)
	if err != nil {
		return nil, err
	}
	return redisacl.New(redisacl.Config{
		Nodes: k.Nodes, User: k.User, AdminUser: k.Admin.Username, AdminPassword: password,
		Check: k.Check, TLS: k.TLS, CAPEM: caPEM, ServerName: k.ServerName,
		AllowPlaintext: k.AllowPlaintext, Timeout: k.Timeout, TracerProvider: r.backends.TracerProvider,
	})
}

func (r *Resolver) mariadb(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	k := s.MariaDB
	password, caPEM, err := r.adminAndCA(ctx, s, k.Admin.Password, "mariadb.ca_file", k.CAFile)
	if err != nil {
		return nil, err
	}
	cfg := mariadb.Config{
		Host: k.Host, Port: k.Port, TLS: k.TLS, CAPEM: caPEM, ServerName: k.ServerName,
		Strategy: k.Strategy, Role: k.Role, User: k.User, HostPattern: k.HostPattern,
		AdminUser: k.Admin.Username, AdminPassword: password,
		CheckQuery: k.CheckQuery, TerminateSessions: k.TerminateSessions, ConnectTimeout: k.ConnectTimeout,
	}
	if len(k.Twins) == 2 {
		cfg.Twins = [2]string{k.Twins[0], k.Twins[1]}
	}
	return mariadb.New(cfg)
}

// HandleProblem says why handle (the value of HandleKey's metadata) cannot name a
// version of s, or returns "": its rotator would refuse every later revoke of a version
// naming an account it does not manage. Checked for the kinds whose handle is an account
// name the inventory fixes.
func HandleProblem(s inventory.Secret, handle string) string {
	switch {
	case s.Redis != nil && handle != s.Redis.User:
		return fmt.Sprintf("this secret manages ACL user %s, not %s", s.Redis.User, quoteHandle(handle))
	case s.MariaDB != nil && s.MariaDB.Strategy == inventory.StrategySingle && handle != s.MariaDB.User:
		return fmt.Sprintf("this secret manages account %s, not %s", s.MariaDB.User, quoteHandle(handle))
	case s.MariaDB != nil && s.MariaDB.Strategy == inventory.StrategyAlternating && !slices.Contains(s.MariaDB.Twins, handle):
		return fmt.Sprintf("the alternating strategy manages the twins %s, not %s; to adopt an account already in use, name it as one of the twins (mariadb.twins)", strings.Join(s.MariaDB.Twins, " and "), quoteHandle(handle))
	}
	return ""
}

// quoteHandle shows an operator's value quoted and cut short.
func quoteHandle(v string) string {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return strconv.Quote(v)
}

// HandleKey names the metadata that a version recorded by hand (`keyturn put --meta
// KEY=...`) must carry for its kind, so that its rotator can find the credential on the
// target later to revoke or restore it: a role, an access key ID, an API key ID or a
// certificate serial, and what it is in words. Empty for an unknown kind.
func HandleKey(kind string) (key, what string) {
	switch kind {
	case inventory.KindPostgres:
		return postgres.MetadataRole, "login role that uses this password"
	case inventory.KindAWSIAM:
		return awsiam.MetadataAccessKeyID, "the access key ID in use, AKIA..."
	case inventory.KindHTTPAPI:
		return httpapi.FieldKeyID, "the API key's ID"
	case inventory.KindVaultPKI, inventory.KindLocalCA:
		return certs.MetadataSerial, "the certificate's serial number"
	case inventory.KindRedis:
		return redisacl.MetadataUser, "the ACL user this password belongs to"
	case inventory.KindMariaDB:
		return mariadb.MetadataUser, "the account (user name) that uses this password"
	}
	return "", ""
}
