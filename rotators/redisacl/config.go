package redisacl

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Defaults ApplyDefaults fills in.
const (
	// DefaultPort is Redis's port, for a node written without one.
	DefaultPort = 6379
	// DefaultTimeout bounds each connection attempt and each command on a node.
	DefaultTimeout = 5 * time.Second
	// DefaultCheck is the command Test runs as the user when the inventory declares none.
	DefaultCheck = "PING"
)

// maxUserLen keeps user names to what an operator would type; Redis itself takes any
// length.
const maxUserLen = 128

// Config describes one ACL user on a set of Redis (or Valkey) nodes.
type Config struct {
	// Nodes are the host:port addresses of every node the user lives on: a primary, its
	// replicas, sentinels, cluster nodes. ACLs are per node and never replicated, so
	// every step is applied to each of them. A node without a port gets DefaultPort.
	Nodes []string
	// User is the managed ACL user. It must exist on every node, with the rules (key
	// patterns, commands) the application needs: Keyturn changes its passwords only.
	User string
	// AdminUser and AdminPassword are the ACL user that changes User. See the package
	// documentation for the rules it needs.
	AdminUser     string
	AdminPassword secret.Sensitive
	// Check is the read-only command, as words ("GET", "app:health"), that Test runs as
	// User on every node to prove the password works for the application; empty means
	// PING. Test refuses a command the server does not flag read-only.
	Check []string
	// TLS connects to every node over TLS; CAPEM holds the CA certificates to trust (the
	// system's roots when empty) and ServerName the name to check the nodes' certificates
	// against (each node's host when empty).
	TLS        bool
	CAPEM      []byte
	ServerName string
	// AllowPlaintext lets a node that is not on loopback be reached without TLS, which
	// sends the admin password and the new password unencrypted.
	AllowPlaintext bool
	// Timeout bounds each connection attempt and each command. Defaults to DefaultTimeout.
	Timeout time.Duration
	// TracerProvider, when set, gets a span for each connection and each command
	// (telemetry/redisspans: command names, never arguments); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// ApplyDefaults fills in the fields left empty that have defaults, and the port of each
// node written without one.
func (c *Config) ApplyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Check) == 0 {
		c.Check = []string{DefaultCheck}
	}
	nodes := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		nodes[i] = WithPort(n)
	}
	c.Nodes = nodes
}

// WithPort returns node with DefaultPort added when it names no port.
func WithPort(node string) string {
	node = strings.TrimSpace(node)
	if _, _, err := net.SplitHostPort(node); err == nil || node == "" {
		return node
	}
	return net.JoinHostPort(strings.Trim(node, "[]"), strconv.Itoa(DefaultPort))
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig. Fields that have defaults may be left empty.
func (c Config) Validate() error {
	c.ApplyDefaults() // c is a copy: the caller's value is not changed
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if len(c.Nodes) == 0 {
		add("no nodes: list the host:port of every node the user lives on")
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		if msg := NodeProblem(n); msg != "" {
			add("node %d: %s", i+1, msg)
			continue
		}
		if seen[n] {
			add("node %d: %q is listed twice", i+1, n)
		}
		seen[n] = true
		if host, _, _ := net.SplitHostPort(n); !c.TLS && !c.AllowPlaintext && !loopback(host) {
			add("node %d: %q is not on loopback and TLS is off: passwords would cross the network unencrypted; turn TLS on", i+1, n)
		}
	}
	if msg := UserProblem(c.User); msg != "" {
		add("user: %s", msg)
	}
	if msg := UserProblem(c.AdminUser); msg != "" {
		add("admin user: %s", msg)
	}
	// Rotating the admin's own password would lock Keyturn out after one rotation.
	if c.AdminUser != "" && c.AdminUser == c.User {
		add("admin user %q must not be the managed user", c.AdminUser)
	}
	if c.Timeout < 0 {
		add("timeout is negative")
	}
	for i, w := range c.Check {
		if w == "" || strings.ContainsFunc(w, unicode.IsControl) {
			add("check word %d is empty or holds a control character", i+1)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("redis: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}

// NodeProblem says what is wrong with a node's address, or returns "".
func NodeProblem(node string) string {
	host, port, err := net.SplitHostPort(WithPort(node))
	if err != nil || host == "" {
		return fmt.Sprintf("%q is not host:port", node)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("port %q is not a number between 1 and 65535", port)
	}
	if strings.ContainsAny(host, " /@") {
		return fmt.Sprintf("%q is not a host name or address", host)
	}
	return ""
}

// UserProblem says what is wrong with an ACL user name, or returns "". Redis reads a
// name with spaces or control characters as several words, so none may appear.
func UserProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxUserLen:
		return fmt.Sprintf("is longer than %d bytes", maxUserLen)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "holds a space or a control character"
	case strings.ContainsAny(name, "\"'"):
		return "holds a quote"
	}
	return ""
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
