package inventory

import (
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/rotators/postgres"
)

// maxIdentifierBytes is PostgreSQL's NAMEDATALEN-1. Longer names are truncated silently
// by the server, so the role Keyturn creates would not be the role it later looks for.
const maxIdentifierBytes = 63

// identifierProblem returns what is wrong with a role name, or "". Keyturn always quotes
// identifiers, so any other character is fine.
func identifierProblem(name string) string {
	switch {
	case name == "":
		return "is empty; give a role name"
	case len(name) > maxIdentifierBytes:
		return fmt.Sprintf("is %d bytes long; PostgreSQL truncates names longer than %d bytes, so use a shorter one", len(name), maxIdentifierBytes)
	case strings.ContainsRune(name, 0):
		return "contains a NUL byte, which a PostgreSQL name cannot hold"
	case strings.HasPrefix(name, "pg_"):
		return "starts with pg_, which PostgreSQL reserves for its own roles; choose another name"
	}
	return ""
}

// validatePostgres checks a postgres block.
func (c *secretCheck) validatePostgres(p *Postgres) {
	if strings.TrimSpace(p.Host) == "" {
		c.add("postgres.host", "required; give the host name or IP address of the server")
	}
	if p.Port < 1 || p.Port > 65535 {
		c.add("postgres.port", "must be between 1 and 65535; remove it to use %d", DefaultPostgresPort)
	}
	if strings.TrimSpace(p.Database) == "" {
		c.add("postgres.database", "required; name the database the admin account connects to")
	}
	switch {
	case p.SSLMode == "prefer" || p.SSLMode == "allow":
		c.add("postgres.sslmode", "%s falls back to an unencrypted connection without telling anyone; use one of %s (default %q)", quoteValue(p.SSLMode), yamlfields.QuoteList(sslModes), DefaultSSLMode)
	case !yamlfields.Contains(sslModes, p.SSLMode):
		c.add("postgres.sslmode", "unknown sslmode %s; use one of %s (default %q)", quoteValue(p.SSLMode), yamlfields.QuoteList(sslModes), DefaultSSLMode)
	case p.SSLMode == SSLModeDisable && !p.AllowPlaintext && strings.TrimSpace(p.Host) != "" && !isLoopback(strings.Trim(p.Host, "[]")):
		c.add("postgres.sslmode", "%q to %s would send the admin password and every new password unencrypted across the network; use %q or %q, or set allow_plaintext: true if the network is trusted", SSLModeDisable, quoteValue(p.Host), SSLModeVerifyFull, SSLModeRequire)
	}
	if p.AllowPlaintext && p.SSLMode != SSLModeDisable {
		c.add("postgres.allow_plaintext", "only means something with sslmode %q; remove it", SSLModeDisable)
	}

	if p.Role == "" {
		c.add("postgres.role", "required; name the group role that holds the privileges consumers need")
	} else if msg := identifierProblem(p.Role); msg != "" {
		c.add("postgres.role", "%s", msg)
	}
	if !yamlfields.Contains(strategies, p.Strategy) {
		c.add("postgres.strategy", "unknown strategy %s; use one of %s (default %q)", quoteValue(p.Strategy), yamlfields.QuoteList(strategies), DefaultStrategy)
	}
	c.validateTwins(p)
	c.validateAdmin(p)
	switch {
	case p.CheckQuery != "" && strings.TrimSpace(p.CheckQuery) == "":
		c.add("postgres.check_query", "is blank; write a query or remove the field")
	case p.CheckQuery != "":
		// The kind owns the rule; Test also runs the query so that a second statement
		// could not run even if it got past this check.
		if msg := postgres.CheckQueryProblem(p.CheckQuery); msg != "" {
			c.add("postgres.check_query", "%s", msg)
		}
	}
	if !c.s.pos.has("postgres.connect_timeout") && p.ConnectTimeout == DefaultConnectTimeout {
		return // the built-in default needs no check
	}
	if p.ConnectTimeout <= 0 || p.ConnectTimeout > MaxConnectTimeout {
		c.add("postgres.connect_timeout", "must be more than 0s and at most %s; remove it to use %s", durtext.Short(MaxConnectTimeout), durtext.Short(DefaultConnectTimeout))
	}
}

// validateTwins checks the two login roles of the alternating strategy.
func (c *secretCheck) validateTwins(p *Postgres) {
	if p.Strategy == StrategySingle {
		if len(p.Twins) > 0 {
			c.add("postgres.twins", "only used with strategy %q; remove twins or set strategy: %s", StrategyAlternating, StrategyAlternating)
		}
		return
	}
	if p.Strategy != StrategyAlternating || p.Role == "" {
		return // the strategy or role problem is reported already; twins depend on both
	}
	if len(p.Twins) != 2 {
		c.add("postgres.twins", "needs exactly two role names, got %d; write twins: [%[2]s, %[3]s] or remove it to use those names", len(p.Twins), quoteValue(p.Role+"_a"), quoteValue(p.Role+"_b"))
		return
	}
	// Defaulted twins are named after the role; a problem with them is fixed by naming
	// them explicitly, so say so. A bad role is reported already, and its twins would
	// only repeat it.
	defaulted := !c.s.pos.has("postgres.twins")
	if defaulted && identifierProblem(p.Role) != "" {
		return
	}
	for i, twin := range p.Twins {
		field := fmt.Sprintf("postgres.twins[%d]", i)
		msg := identifierProblem(twin)
		switch {
		case msg != "":
		case twin == p.Role:
			msg = "must differ from role: the twins are login roles that are members of the managed role"
		case twin == p.Admin.Username:
			msg = "must differ from admin.username: Keyturn would change the password it logs in with"
		case i == 1 && twin == p.Twins[0]:
			msg = "must differ from the first twin: the strategy alternates between two roles"
		}
		if msg == "" {
			continue
		}
		if defaulted {
			msg += "; this twin name is derived from the role, so set postgres.twins explicitly"
		}
		c.add(field, "%s", msg)
	}
}

// validateAdmin checks the account Keyturn rotates with.
func (c *secretCheck) validateAdmin(p *Postgres) {
	switch {
	case p.Admin.Username == "":
		c.add("postgres.admin.username", "required; name the account Keyturn logs in with to change passwords")
	case identifierProblem(p.Admin.Username) != "":
		c.add("postgres.admin.username", "%s", identifierProblem(p.Admin.Username))
	case p.Admin.Username == p.Role:
		c.add("postgres.admin.username", "must differ from role: Keyturn would rotate the account it logs in with")
	}
	if p.Admin.Password == "" {
		c.add("postgres.admin.password", "required; write a reference to where the password is kept: %s", refForms)
		return
	}
	if err := p.Admin.Password.Validate(); err != nil {
		c.add("postgres.admin.password", "%v", err)
	}
}
