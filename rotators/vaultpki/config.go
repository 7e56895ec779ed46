package vaultpki

import (
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
)

// DefaultMount is where Vault mounts a PKI engine unless told otherwise.
const DefaultMount = "pki"

// Config describes one certificate signed by one Vault PKI role.
type Config struct {
	// Mount is the path of the PKI secrets engine, without slashes at either end.
	// Defaults to DefaultMount.
	Mount string
	// Role is the PKI role that signs. Required. It must allow the request's names and
	// key type (key_type "any" or the one asked for) and must store what it signs
	// (no_store false, Vault's default), or certificates cannot be revoked.
	Role string
	// Request is the certificate to ask for.
	Request certs.Request
	// CAPEM is the CA certificate (or bundle) consumers trust, PEM. When empty, New reads
	// <mount>/ca/pem, the mount's default issuer. Set it when the mount issues from an
	// intermediate and consumers trust the root.
	CAPEM []byte
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (c *Config) ApplyDefaults() {
	c.Mount = strings.Trim(c.Mount, "/")
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	c.Request.ApplyDefaults()
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig.
func (c Config) Validate() error {
	c.ApplyDefaults() // c is a copy: the caller's value is not changed
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if msg := pathProblem(c.Mount, true); msg != "" {
		add("mount %q %s", c.Mount, msg)
	}
	switch {
	case c.Role == "":
		add("role is empty: name the PKI role that signs, e.g. role: web-server")
	default:
		if msg := pathProblem(c.Role, false); msg != "" {
			add("role %q %s", c.Role, msg)
		}
	}
	problems = append(problems, c.Request.Problems()...)

	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("vaultpki: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}

// pathProblem says what is wrong with a mount or role name that goes into a Vault path,
// or returns "". A name that could climb out of the mount or add a path segment would
// send the request somewhere the policy never meant.
func pathProblem(name string, slashesAllowed bool) string {
	switch {
	case strings.ContainsAny(name, " \t\r\n?#%*+"):
		return "holds a character Vault paths cannot: use letters, digits, '-', '_' and '.'"
	case !slashesAllowed && strings.Contains(name, "/"):
		return "holds '/': a role name is one path segment"
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "has an empty, '.' or '..' segment"
		}
	}
	return ""
}
