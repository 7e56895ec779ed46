package mariadb

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Strategies a Config may name.
const (
	// StrategyAlternating re-keys the inactive one of two twin accounts each rotation;
	// both hold the managed role as their default role.
	StrategyAlternating = "alternating"
	// StrategySingle gives one account a new password each rotation.
	StrategySingle = "single"
)

// TLS modes a Config may name.
const (
	// TLSDisable connects in plain text; for loopback and trusted networks only.
	TLSDisable = "disable"
	// TLSRequire encrypts but does not check the server's certificate.
	TLSRequire = "require"
	// TLSVerifyFull encrypts and checks that a trusted CA signed a certificate naming the host.
	TLSVerifyFull = "verify-full"
)

// Defaults ApplyDefaults fills in.
const (
	DefaultPort = 3306
	// DefaultHostPattern is the host part of the managed accounts: any client host.
	DefaultHostPattern = "%"
	// DefaultTLS never falls back to plain text silently.
	DefaultTLS            = TLSRequire
	DefaultConnectTimeout = 5 * time.Second
)

// maxNameLen is MySQL's limit on user names (MariaDB allows 80): a name both take.
const maxNameLen = 32

// maxHostLen is the limit on the host part of an account.
const maxHostLen = 255

// Config describes one managed account (or pair of accounts) on one server.
type Config struct {
	// Host and Port locate the server. Port defaults to 3306.
	Host string
	Port int
	// TLS is TLSDisable, TLSRequire (the default) or TLSVerifyFull; CAPEM holds the CA
	// certificates verify-full trusts (the system's roots when empty) and ServerName the
	// name the certificate must carry (Host when empty).
	TLS        string
	CAPEM      []byte
	ServerName string
	// Strategy is StrategyAlternating (the default) or StrategySingle.
	Strategy string
	// Role is the role that holds the application's privileges; the alternating
	// strategy's twins get it as their default role. Required for alternating.
	Role string
	// Twins are the two accounts of the alternating strategy; they default to
	// "<role>_a" and "<role>_b".
	Twins [2]string
	// User is the account the single strategy changes. Required for single.
	User string
	// HostPattern is the host part of every managed account ('app'@'%' versus
	// 'app'@'10.%'); defaults to "%".
	HostPattern string
	// AdminUser and AdminPassword are the account that changes the others. See the
	// package documentation for the privileges it needs.
	AdminUser     string
	AdminPassword secret.Sensitive
	// CheckQuery, if set, is run by Test as the new account, in a read-only transaction.
	CheckQuery string
	// TerminateSessions makes Revoke end the revoked account's connections.
	TerminateSessions bool
	// ConnectTimeout bounds each connection attempt and each statement.
	ConnectTimeout time.Duration
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (c *Config) ApplyDefaults() {
	c.Host = strings.Trim(c.Host, "[]") // an IPv6 address as written in a URL
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TLS == "" {
		c.TLS = DefaultTLS
	}
	if c.Strategy == "" {
		c.Strategy = StrategyAlternating
	}
	if c.Strategy == StrategyAlternating && c.Twins == [2]string{} && c.Role != "" {
		c.Twins = [2]string{c.Role + "_a", c.Role + "_b"}
	}
	if c.HostPattern == "" {
		c.HostPattern = DefaultHostPattern
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig.
func (c Config) Validate() error {
	c.ApplyDefaults()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if strings.TrimSpace(c.Host) == "" {
		add("host is empty")
	}
	if c.Port < 1 || c.Port > 65535 {
		add("port %d is not between 1 and 65535", c.Port)
	}
	switch c.TLS {
	case TLSDisable, TLSRequire, TLSVerifyFull:
	default:
		add("tls %q is not %q, %q or %q", c.TLS, TLSDisable, TLSRequire, TLSVerifyFull)
	}
	if msg := HostPatternProblem(c.HostPattern); msg != "" {
		add("host pattern: %s", msg)
	}
	if msg := NameProblem(c.AdminUser); msg != "" {
		add("admin user: %s", msg)
	}
	switch c.Strategy {
	case StrategyAlternating:
		if msg := NameProblem(c.Role); msg != "" {
			add("role: %s", msg)
		}
		for i, twin := range c.Twins {
			if msg := NameProblem(twin); msg != "" {
				add("twin %d: %s", i+1, msg)
			} else if twin == c.Role {
				add("twin %d %q is the role itself", i+1, twin)
			}
		}
		if c.Twins[0] != "" && c.Twins[0] == c.Twins[1] {
			add("both twins are %q", c.Twins[0])
		}
	case StrategySingle:
		if msg := NameProblem(c.User); msg != "" {
			add("user: %s", msg)
		}
	default:
		add("strategy %q is not %q or %q", c.Strategy, StrategyAlternating, StrategySingle)
	}
	for _, managed := range c.managed() {
		if managed != "" && managed == c.AdminUser {
			add("admin user %q must not be a managed account", c.AdminUser)
		}
	}
	if c.ConnectTimeout < 0 {
		add("connect timeout is negative")
	}
	if c.CheckQuery != "" {
		if msg := CheckQueryProblem(c.CheckQuery); msg != "" {
			add("check query %s", msg)
		}
	}
	if c.Strategy == StrategySingle && c.TerminateSessions {
		add("terminate_sessions does not apply to the single strategy: its versions share one account, so ending its connections would end the new password's too")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("mariadb: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}

// managed lists the accounts (user names) the configuration may change.
func (c Config) managed() []string {
	if c.Strategy == StrategySingle {
		return []string{c.User}
	}
	return c.Twins[:]
}

// NameProblem says what is wrong with a user or role name, or returns "". Names are
// kept to letters, digits, '_', '-' and '$', at most 32 bytes (MySQL's limit), so a name
// never needs more than quoting.
func NameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is longer than %d bytes", maxNameLen)
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '$')
	}):
		return "holds a character other than letters, digits, '_', '-' and '$'"
	}
	return ""
}

// readStatements are the statements a check query may start with. START TRANSACTION READ
// ONLY does not stop DDL (MariaDB commits before it and resets the transaction's access
// mode), so the check is kept to statements that read.
var readStatements = []string{"SELECT", "WITH", "SHOW", "VALUES", "TABLE", "DESCRIBE", "DESC", "EXPLAIN"}

// CheckQueryProblem says what is wrong with a check query, or returns "": it must be one
// statement that reads (the server is also told to refuse writes, as a second wall).
func CheckQueryProblem(q string) string {
	words := strings.Fields(strings.TrimSpace(q))
	if len(words) == 0 {
		return "is empty; write one read-only query such as SELECT 1 FROM shop.items LIMIT 1, or remove it"
	}
	first := strings.ToUpper(strings.TrimLeft(words[0], "("))
	if !slices.Contains(readStatements, first) {
		return "must be a query that reads: start it with SELECT, WITH, SHOW, VALUES, TABLE, DESCRIBE or EXPLAIN"
	}
	if body := strings.TrimRight(strings.TrimSpace(q), "; \t\n"); strings.Contains(body, ";") {
		return "holds more than one statement (a ';' inside); a check query must be one read-only statement"
	}
	return ""
}

// HostPatternProblem says what is wrong with an account's host part, or returns "": a
// host name, an address, a pattern with '%' and '_', or an address/netmask.
func HostPatternProblem(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > maxHostLen:
		return fmt.Sprintf("is longer than %d bytes", maxHostLen)
	case strings.ContainsFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("%_.-:/", r))
	}):
		return "holds a character other than letters, digits and % _ . - : /"
	}
	return ""
}
