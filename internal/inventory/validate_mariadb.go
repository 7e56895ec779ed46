package inventory

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/rotators/mariadb"
)

// validateMariaDB checks a mariadb block. The rotator owns the rules for names and host
// patterns; the messages here add where and how to fix them.
func (c *secretCheck) validateMariaDB(k *MariaDB) {
	host := strings.Trim(k.Host, "[]")
	hostOK := false
	switch {
	case strings.TrimSpace(k.Host) == "":
		c.add("mariadb.host", "required; give the host name or IP address of the server")
	case net.ParseIP(host) == nil && strings.ContainsAny(host, ":/@ "):
		c.add("mariadb.host", "%s is not a host name or IP address; write the port in mariadb.port", quoteValue(k.Host))
	default:
		hostOK = true
	}
	if k.Port < 1 || k.Port > 65535 {
		c.add("mariadb.port", "must be between 1 and 65535; remove it to use %d", DefaultMariaDBPort)
	}
	switch {
	case !yamlfields.Contains(mariadbTLSModes, k.TLS):
		c.add("mariadb.tls", "unknown mode %s; use one of %s (default %q)", quoteValue(k.TLS), yamlfields.QuoteList(mariadbTLSModes), DefaultMariaDBTLS)
	case k.TLS == mariadb.TLSDisable && !k.AllowPlaintext && hostOK && !isLoopback(host):
		c.add("mariadb.tls", "%q to %s would send the admin password and every new password's login unencrypted across the network; use %q or %q, or set allow_plaintext: true if the network is trusted", mariadb.TLSDisable, quoteValue(k.Host), mariadb.TLSVerifyFull, mariadb.TLSRequire)
	}
	if k.AllowPlaintext && k.TLS != mariadb.TLSDisable {
		c.add("mariadb.allow_plaintext", "only means something with tls %q; remove it", mariadb.TLSDisable)
	}
	if (k.CAFile != "" || k.ServerName != "") && k.TLS != mariadb.TLSVerifyFull {
		c.add("mariadb.tls", "ca_file and server_name apply to tls %q only; set it or remove them", mariadb.TLSVerifyFull)
	}
	if k.CAFile != "" || c.s.pos.has("mariadb.ca_file") {
		c.validateCAFile("mariadb.ca_file", "the server's", k.CAFile)
	}
	switch k.Strategy {
	case StrategyAlternating:
		if msg := mariadb.NameProblem(k.Role); msg != "" {
			c.add("mariadb.role", "%s; name the role that holds the privileges the application needs", msg)
		}
		if len(k.Twins) != 2 {
			c.add("mariadb.twins", "must list exactly two account names; remove it to use <role>_a and <role>_b")
		} else {
			for i, twin := range k.Twins {
				if msg := mariadb.NameProblem(twin); msg != "" {
					c.add(fmt.Sprintf("mariadb.twins[%d]", i), "%s", msg)
				} else if twin == k.Role {
					c.add(fmt.Sprintf("mariadb.twins[%d]", i), "is the role itself; give the twins names of their own")
				}
			}
			if k.Twins[0] == k.Twins[1] && k.Twins[0] != "" {
				c.add("mariadb.twins[1]", "is the same account as twins[0]")
			}
		}
		if k.User != "" {
			c.add("mariadb.user", "applies to the single strategy only; the alternating strategy's accounts are the twins")
		}
	case StrategySingle:
		if msg := mariadb.NameProblem(k.User); msg != "" {
			c.add("mariadb.user", "%s; name the account whose password Keyturn changes", msg)
		}
	default:
		c.add("mariadb.strategy", "unknown strategy %s; use %q (two accounts holding one role, no window) or %q (one account)", quoteValue(k.Strategy), StrategyAlternating, StrategySingle)
	}
	if msg := mariadb.HostPatternProblem(k.HostPattern); msg != "" {
		c.add("mariadb.host_pattern", "%s; write the host part of the accounts, e.g. '%%' or '10.0.%%'", msg)
	}
	if msg := mariadb.NameProblem(k.Admin.Username); msg != "" {
		c.add("mariadb.admin.username", "%s; name the account Keyturn logs in as to change passwords", msg)
	} else if yamlfields.Contains(mariadbAccounts(k), k.Admin.Username) {
		c.add("mariadb.admin.username", "is one of the accounts this secret rotates; rotating the admin's own password would lock Keyturn out")
	}
	c.validateRef("mariadb.admin.password", k.Admin.Password, "the admin account's password")
	if k.CheckQuery != "" || c.s.pos.has("mariadb.check_query") {
		if msg := mariadb.CheckQueryProblem(k.CheckQuery); msg != "" {
			c.add("mariadb.check_query", "%s", msg)
		}
	}
	if k.TerminateSessions && k.Strategy == StrategySingle {
		c.add("mariadb.terminate_sessions", "does not apply to the single strategy: its versions share one account, so ending its connections would end the new password's too; remove it, or use the alternating strategy")
	}
	if k.ConnectTimeout < time.Second || k.ConnectTimeout > MaxConnectTimeout {
		c.add("mariadb.connect_timeout", "must be between 1s and %s; remove it to use %s", durtext.Short(MaxConnectTimeout), durtext.Short(DefaultConnectTimeout))
	}
}

// mariadbAccounts lists the user names a mariadb secret touches: its role, and its twins
// or its single account.
func mariadbAccounts(k *MariaDB) []string {
	if k.Strategy == StrategySingle {
		return []string{k.User}
	}
	return append([]string{k.Role}, k.Twins...)
}

// validateMariaDBOverlap refuses two mariadb secrets that touch the same account or role
// name on one server (whatever the host patterns: 'app'@'%' and 'app'@'10.%' answer the
// same logins), or whose admin is another's managed account. skip says which secrets to
// leave out.
func (inv *Inventory) validateMariaDBOverlap(r *report, skip func(i int) bool) {
	type key struct{ server, name string }
	type use struct {
		secret int
		what   string
	}
	seen := map[key]use{}
	admins := map[key]int{}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		k := s.MariaDB
		if s.Kind != KindMariaDB || k == nil || skip(i) || strings.TrimSpace(k.Host) == "" {
			continue
		}
		server := serverKey(k.Host, k.Port)
		clash := func(field, name string, prev use) {
			r.Add(s.line(field), fmt.Sprintf("secrets[%d].%s", i, field),
				"%s is also the %s of secrets[%d] (%s:%d) on the same server; the two secrets would rotate each other's accounts: give each secret its own",
				quoteValue(name), prev.what, prev.secret, inv.Path, inv.Secrets[prev.secret].Line)
		}
		for _, name := range mariadbAccounts(k) {
			if name == "" {
				continue
			}
			at := key{server, name}
			if prev, ok := seen[at]; ok && prev.secret != i {
				clash(mariadbField(k, name), name, prev)
				continue
			}
			if j, ok := admins[at]; ok {
				clash(mariadbField(k, name), name, use{j, "admin account"})
				continue
			}
			seen[at] = use{i, "managed account or role"}
		}
		if name := k.Admin.Username; name != "" {
			at := key{server, name}
			if prev, ok := seen[at]; ok && prev.secret != i {
				clash("mariadb.admin.username", name, prev)
			} else if _, ok := admins[at]; !ok {
				admins[at] = i
			}
		}
	}
}

// mariadbField names the field a managed name comes from, for the report's line.
func mariadbField(k *MariaDB, name string) string {
	switch {
	case name == k.Role:
		return "mariadb.role"
	case k.Strategy == StrategySingle:
		return "mariadb.user"
	}
	return "mariadb.twins"
}
