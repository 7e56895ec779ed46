package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/rotators/httpapi"
)

// kindBlock is one kind-specific block of a secret: whether the file has it, what a
// minimal one holds (for the "required" message), and its checks.
type kindBlock struct {
	kind, field, minimal string
	present              bool
	validate             func()
}

// validateKindBlocks requires the block of the secret's kind, refuses the blocks of other
// kinds, and checks the one that belongs.
func (c *secretCheck) validateKindBlocks() {
	s := c.s
	blocks := []kindBlock{
		{KindPostgres, "postgres", "host, database, role and admin", s.Postgres != nil, func() { c.validatePostgres(s.Postgres) }},
		{KindAWSIAM, "awsiam", "user", s.AWSIAM != nil, func() { c.validateAWSIAM(s.AWSIAM) }},
		{KindHTTPAPI, "httpapi", "admin, create, test, revoke, key_id and key_secret", s.HTTPAPI != nil, func() { c.validateHTTPAPI(s.HTTPAPI) }},
		{KindVaultPKI, "vaultpki", "role and common_name", s.VaultPKI != nil, func() { c.validateVaultPKI(s.VaultPKI) }},
		{KindLocalCA, "localca", "ca_cert, ca_key, crl_file and common_name", s.LocalCA != nil, func() { c.validateLocalCA(s.LocalCA) }},
		{KindRedis, "redis", "nodes, user and admin", s.Redis != nil, func() { c.validateRedis(s.Redis) }},
		{KindMariaDB, "mariadb", "host, role (or strategy single and user) and admin", s.MariaDB != nil, func() { c.validateMariaDB(s.MariaDB) }},
	}
	for _, b := range blocks {
		switch {
		case s.Kind == b.kind && !b.present:
			c.add(b.field, "required for kind %q; add a %s: block with at least %s", b.kind, b.field, b.minimal)
		case b.present && s.Kind != b.kind && yamlfields.Contains(knownKinds, s.Kind):
			c.add(b.field, "only allowed when kind is %q; remove the block", b.kind)
		case b.present:
			b.validate()
		}
	}
}

func (c *secretCheck) validateAWSIAM(k *AWSIAM) {
	switch {
	case k.User == "":
		c.add("awsiam.user", "required; name the IAM user whose access keys Keyturn rotates")
	case len(k.User) > 64 || strings.ContainsAny(k.User, " /:"):
		c.add("awsiam.user", "%s is not an IAM user name (at most 64 characters of letters, digits and +=,.@_-)", quoteValue(k.User))
	}
	if k.DeleteAfter < 0 {
		c.add("awsiam.delete_after", "must not be negative; use 0s to delete a deactivated key right after revoke")
	}
	if k.ConsistencyTimeout <= 0 || k.ConsistencyTimeout > MaxIAMConsistencyTimeout {
		c.add("awsiam.consistency_timeout", "must be between 1s and %s, within one attempt of the Test step (a minute); remove it to use %s", durtext.Short(MaxIAMConsistencyTimeout), durtext.Short(DefaultIAMConsistencyTimeout))
	}
}

func (c *secretCheck) validateHTTPAPI(h *HTTPAPI) {
	c.validateRef("httpapi.admin", h.Admin, "the admin credential that may create and revoke keys")
	for _, call := range []struct {
		name string
		call HTTPCall
	}{{"create", h.Create}, {"test", h.Test}, {"revoke", h.Revoke}} {
		c.validateHTTPCall("httpapi."+call.name, call.call)
	}
	if u := h.InUse; u != nil {
		// The rotator owns in_use's defaults and its own rules (how the answer is read,
		// the delay, no {{.Secret}}); the call's general checks are the same as for every
		// call, made on the call as the rotator will send it.
		check := u.Check()
		check.ApplyDefaults()
		call := u.HTTPCall
		call.Method = check.Method
		c.validateHTTPCall("httpapi.in_use", call)
		for _, p := range check.Problems() {
			c.add("httpapi."+p.Field, "%s", p.Message)
		}
	}
	if h.KeyID == "" {
		c.add("httpapi.key_id", "required; give the JSON path of the new key's ID in the create response, e.g. data.id")
	}
	if h.KeySecret == "" {
		c.add("httpapi.key_secret", "required; give the JSON path of the new key's secret in the create response, e.g. data.secret")
	}
	if h.Timeout <= 0 || h.Timeout > MaxConnectTimeout {
		c.add("httpapi.timeout", "must be between 1s and %s; remove it to use %s", durtext.Short(MaxConnectTimeout), durtext.Short(DefaultHTTPTimeout))
	}
	if h.CAFile != "" || c.s.pos.has("httpapi.ca_file") {
		c.validateCAFile("httpapi.ca_file", "the API's", h.CAFile)
	}
}

// validateCAFile checks that a CA bundle (field, for the server named by whose) can be
// read and holds a certificate, here rather than at the first rotation. It is read again
// where the rotator is built.
func (c *secretCheck) validateCAFile(field, whose, path string) {
	if strings.TrimSpace(path) == "" {
		c.add(field, "is empty; give the path of a PEM file with the CA certificates that sign %s certificate, or remove it", whose)
		return
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.add(field, "%s does not exist; give the path of a PEM file with %s CA certificates", quoteValue(path), whose)
	case errors.Is(err, fs.ErrPermission):
		c.add(field, "%s cannot be read (permission denied) by this process", quoteValue(path))
	case err != nil:
		c.add(field, "%s cannot be read; give the path of a readable PEM file", quoteValue(path))
	default:
		if _, err := httpapi.ParseCABundle(data); err != nil {
			c.add(field, "%s %v", quoteValue(path), err)
		}
	}
}

func (c *secretCheck) validateHTTPCall(field string, call HTTPCall) {
	if call.URL == "" && call.Method == "" {
		c.add(field, "required; give at least method and url")
		return
	}
	if !yamlfields.Contains(httpMethods, call.Method) {
		c.add(field+".method", "unknown method %s; use one of %s", quoteValue(call.Method), yamlfields.QuoteList(httpMethods))
	}
	switch {
	case strings.Contains(call.URL, ".Admin") || strings.Contains(call.URL, ".Secret"):
		c.add(field+".url", "must not contain {{.Admin}} or {{.Secret}}: URLs end up in proxy and server logs; send credentials in a header or the body")
	default:
		u, err := url.Parse(strings.NewReplacer("{{", "", "}}", "").Replace(call.URL))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			c.add(field+".url", "must be an absolute http(s) URL such as https://api.example.com/v1/keys")
		} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			c.add(field+".url", "uses plain http to %s, which would send credentials unencrypted; use https (plain http is allowed for localhost only)", quoteValue(u.Hostname()))
		}
	}
	for _, st := range append(append([]int(nil), call.Success...), call.Gone...) {
		if st < 100 || st > 599 {
			c.add(field, "status %d is not an HTTP status; use numbers between 100 and 599", st)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *secretCheck) validateVaultPKI(k *VaultPKI) {
	if k.Role == "" {
		c.add("vaultpki.role", "required; name the PKI role that signs the certificate")
	}
	if strings.Trim(k.Mount, "/") == "" {
		c.add("vaultpki.mount", "must name the PKI engine's mount; remove it to use %q", DefaultPKIMount)
	}
	c.validateCertificate("vaultpki", k.Certificate)
}

func (c *secretCheck) validateLocalCA(k *LocalCA) {
	c.validateRef("localca.ca_cert", k.CACert, "the CA certificate")
	c.validateRef("localca.ca_key", k.CAKey, "the CA private key")
	if k.CRLFile == "" {
		c.add("localca.crl_file", "required; give the file the CA publishes its revocation list to")
	}
	c.validateCertificate("localca", k.Certificate)
}

func (c *secretCheck) validateCertificate(block string, cert Certificate) {
	if cert.CommonName == "" {
		c.add(block+".common_name", "required; give the name the certificate is for, e.g. api.internal")
	}
	for i, ip := range cert.IPSANs {
		if net.ParseIP(ip) == nil {
			c.add(fmt.Sprintf("%s.ip_sans[%d]", block, i), "%s is not an IP address", quoteValue(ip))
		}
	}
	if cert.TTL <= 0 {
		c.add(block+".ttl", "must be positive; remove it to use %s", durtext.Short(DefaultCertTTL))
	}
	switch {
	case !yamlfields.Contains(keyTypes, cert.KeyType):
		c.add(block+".key_type", "unknown key type %s; use one of %s (default %q)", quoteValue(cert.KeyType), yamlfields.QuoteList(keyTypes), DefaultKeyType)
	case cert.KeyType == "rsa" && cert.KeyBits < 2048:
		c.add(block+".key_bits", "must be at least 2048 for rsa")
	case cert.KeyType == "ec" && cert.KeyBits != 0:
		c.add(block+".key_bits", "applies to rsa keys only; ec keys are P-256, so remove it")
	}
	if cert.RenewAt <= 0 || cert.RenewAt >= 1 {
		c.add(block+".renew_at", "must be a share of the lifetime between 0 and 1, e.g. 0.66; remove it to use 2/3")
	}
}

// validateRef checks a required reference field.
func (c *secretCheck) validateRef(field string, r Ref, what string) {
	if r == "" {
		c.add(field, "required; write a reference to where %s is kept: %s", what, refForms)
		return
	}
	if err := r.Validate(); err != nil {
		c.add(field, "%v", err)
	}
}
