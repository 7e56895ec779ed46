package postgres

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Strategies a Config may name.
const (
	// StrategyAlternating re-keys the inactive one of two twin login roles each rotation.
	StrategyAlternating = "alternating"
	// StrategySingle gives the managed role itself a new password each rotation.
	StrategySingle = "single"
)

// Defaults ApplyDefaults fills in.
const (
	DefaultPort     = 5432
	DefaultDatabase = "postgres"
	// DefaultSSLMode never falls back to plain text silently. The inventory's default
	// is this constant (config.DefaultSSLMode), not a copy of it.
	DefaultSSLMode = "require"
	// DefaultConnectTimeout is the inventory's default too (config.DefaultConnectTimeout);
	// it was 10s here and 5s there, and 5s is what every configured worker used.
	DefaultConnectTimeout = 5 * time.Second
)

// maxIdentifierLen is NAMEDATALEN-1: PostgreSQL silently truncates longer names, and a
// truncated twin would be a different role from the one the metadata names.
const maxIdentifierLen = 63

var sslModes = map[string]bool{
	"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true,
}

// Config describes one managed role on one server.
type Config struct {
	// Host and Port locate the server. Port defaults to 5432.
	Host string
	Port int
	// Database to connect to, for the admin and for Test. Defaults to "postgres".
	Database string
	// SSLMode is a libpq sslmode (disable, allow, prefer, require, verify-ca,
	// verify-full); SSLRootCert a file of CA certificates for verify-ca and verify-full
	// (with require, a root certificate makes it verify-ca, as in libpq). SSLMode
	// defaults to DefaultSSLMode, require: encrypted, never a silent plaintext fallback.
	SSLMode     string
	SSLRootCert string
	// Role is the managed role: the group role with the alternating strategy, the login
	// role itself with the single strategy.
	Role string
	// Strategy is StrategyAlternating (the default) or StrategySingle.
	Strategy string
	// Twins are the two login roles of the alternating strategy. They default to
	// "<role>_a" and "<role>_b".
	Twins [2]string
	// AdminUser and AdminPassword are the credential that changes roles. See the package
	// documentation for the privileges it needs.
	AdminUser     string
	AdminPassword secret.Sensitive
	// CheckQuery, if set, is run by Test as the new login role, in a read-only
	// transaction, to prove it can do its job (for example "SELECT 1 FROM orders LIMIT 1").
	// It must be one statement (see CheckQueryProblem).
	CheckQuery string
	// TerminateSessions makes Revoke end the open sessions of the revoked role.
	TerminateSessions bool
	// ConnectTimeout bounds each connection attempt, and all of Test. Defaults to
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// TracerProvider, when set, gets a span for each connection and each statement
	// (telemetry/pgxspans: operation names, never the statement text); nil traces
	// nothing.
	TracerProvider trace.TracerProvider
	// Pools, when set, lends the admin sessions from the worker's pool of this target
	// instead of logging in for each call (see Pools); nil logs in each time.
	Pools *Pools
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (c *Config) ApplyDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.SSLMode == "" {
		c.SSLMode = DefaultSSLMode
	}
	if c.Strategy == "" {
		c.Strategy = StrategyAlternating
	}
	if c.Strategy == StrategyAlternating && c.Twins == [2]string{} && c.Role != "" {
		c.Twins = [2]string{c.Role + "_a", c.Role + "_b"}
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig. Fields that have defaults may be left empty.
func (c Config) Validate() error {
	c.ApplyDefaults() // c is a copy: the caller's value is not changed
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.Host == "" {
		add("host is empty")
	}
	if c.Port < 1 || c.Port > 65535 {
		add("port %d is not between 1 and 65535", c.Port)
	}
	if !sslModes[c.SSLMode] {
		add("sslmode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", c.SSLMode)
	}
	if c.ConnectTimeout < 0 {
		add("connect timeout is negative")
	}
	if msg := identifierProblem(c.Role); msg != "" {
		add("role: %s", msg)
	}
	if msg := identifierProblem(c.AdminUser); msg != "" {
		add("admin user: %s", msg)
	}
	if c.CheckQuery != "" {
		if msg := CheckQueryProblem(c.CheckQuery); msg != "" {
			add("check query %s", msg)
		}
	}

	switch c.Strategy {
	case StrategyAlternating:
		problems = append(problems, c.twinProblems()...)
	case StrategySingle:
		// Twins are optional here: they let versions made by the alternating strategy
		// be revoked after a switch.
		if c.Twins != [2]string{} {
			problems = append(problems, c.twinProblems()...)
		}
	default:
		add("strategy %q is not %q or %q", c.Strategy, StrategyAlternating, StrategySingle)
	}

	// Rotating the admin's own password would lock Keyturn out after one rotation.
	if c.AdminUser != "" && (c.AdminUser == c.Role || c.AdminUser == c.Twins[0] || c.AdminUser == c.Twins[1]) {
		add("admin user %q must not be the managed role or one of its twins", c.AdminUser)
	}

	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("postgres: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}

func (c Config) twinProblems() []string {
	var problems []string
	for i, twin := range c.Twins {
		if msg := identifierProblem(twin); msg != "" {
			problems = append(problems, fmt.Sprintf("twin %d: %s", i+1, msg))
		}
		if twin != "" && twin == c.Role {
			problems = append(problems, fmt.Sprintf("twin %d %q is the managed role itself", i+1, twin))
		}
	}
	if c.Twins[0] != "" && c.Twins[0] == c.Twins[1] {
		problems = append(problems, fmt.Sprintf("both twins are %q", c.Twins[0]))
	}
	return problems
}

// identifierProblem says what is wrong with a role name, or returns "".
func identifierProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxIdentifierLen:
		return fmt.Sprintf("%q is longer than %d bytes", name, maxIdentifierLen)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return fmt.Sprintf("%q is not valid UTF-8 text", name)
	case strings.HasPrefix(name, "pg_"):
		// pg_ names belong to PostgreSQL's predefined roles.
		return fmt.Sprintf("%q uses the reserved prefix pg_", name)
	}
	return ""
}
