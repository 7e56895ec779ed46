package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/rotators/redisacl"
)

// validateRedis checks a redis block. The rotator owns the rules for node addresses and
// user names; the messages here add where and how to fix them.
func (c *secretCheck) validateRedis(k *Redis) {
	if len(k.Nodes) == 0 {
		c.add("redis.nodes", "required; list the host:port of every node the user lives on (primary, replicas, sentinels): ACLs are per node")
	}
	seen := map[string]int{}
	for i, n := range k.Nodes {
		field := fmt.Sprintf("redis.nodes[%d]", i)
		if msg := redisacl.NodeProblem(n); msg != "" {
			c.add(field, "%s is not a node address; write host:port, e.g. redis-1.internal:6379", quoteValue(n))
			continue
		}
		addr := redisacl.WithPort(n)
		host, port := splitNode(addr)
		if j, ok := seen[serverKey(host, port)]; ok {
			c.add(field, "%s is the same node as redis.nodes[%d]; list each node once", quoteValue(n), j)
		}
		seen[serverKey(host, port)] = i
		if !k.TLS && !k.AllowPlaintext && !isLoopback(host) {
			c.add(field, "%s is reached without TLS, which would send the admin password and every new password unencrypted across the network; set tls: true, or allow_plaintext: true if the network is trusted", quoteValue(n))
		}
	}
	if msg := redisacl.UserProblem(k.User); msg != "" {
		c.add("redis.user", "%s; name the ACL user whose password Keyturn rotates", msg)
	}
	switch msg := redisacl.UserProblem(k.Admin.Username); {
	case msg != "":
		c.add("redis.admin.username", "%s; name the ACL user Keyturn logs in as to change passwords", msg)
	case k.Admin.Username == k.User:
		c.add("redis.admin.username", "is the managed user itself; rotating the admin's own password would lock Keyturn out, so use a separate admin user")
	}
	c.validateRef("redis.admin.password", k.Admin.Password, "the admin user's password")
	for i, w := range k.Check {
		switch {
		case w == "":
			c.add(fmt.Sprintf("redis.check[%d]", i), "is empty; write the command and its arguments as a list, e.g. [GET, app:health]")
		case strings.ContainsFunc(w, unicode.IsControl):
			c.add(fmt.Sprintf("redis.check[%d]", i), "holds a control character; write plain words, e.g. [GET, app:health]")
		}
	}
	if k.AllowPlaintext && k.TLS {
		c.add("redis.allow_plaintext", "only means something without tls; remove it")
	}
	if !k.TLS && (k.CAFile != "" || k.ServerName != "") {
		c.add("redis.tls", "ca_file and server_name apply to TLS connections; set tls: true or remove them")
	}
	if k.CAFile != "" || c.s.pos.has("redis.ca_file") {
		c.validateCAFile("redis.ca_file", "the nodes'", k.CAFile)
	}
	if k.Timeout < time.Second || k.Timeout > MaxConnectTimeout {
		c.add("redis.timeout", "must be between 1s and %s; remove it to use %s", durtext.Short(MaxConnectTimeout), durtext.Short(DefaultRedisTimeout))
	}
}

// validateRedisUserOverlap refuses two redis secrets that manage the same ACL user on a
// shared node, or one whose user is another's admin there: they would remove each
// other's passwords, or lock Keyturn out. Each clash is reported at the later secret's
// field and names the earlier one's place. skip says which secrets to leave out.
func (inv *Inventory) validateRedisUserOverlap(r *report, skip func(i int) bool) {
	type key struct{ node, user string }
	type use struct {
		secret      int
		field, what string
	}
	seen := map[key]use{}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		k := s.Redis
		if s.Kind != KindRedis || k == nil || skip(i) {
			continue
		}
		for _, u := range []struct{ field, what, name string }{
			{"redis.user", "managed user", k.User},
			{"redis.admin.username", "admin user", k.Admin.Username},
		} {
			if u.name == "" {
				continue
			}
			for _, n := range k.Nodes {
				if redisacl.NodeProblem(n) != "" {
					continue
				}
				at := key{serverKey(splitNode(redisacl.WithPort(n))), u.name}
				prev, ok := seen[at]
				if !ok {
					seen[at] = use{i, u.field, u.what}
					continue
				}
				if prev.secret == i || (prev.what == "admin user" && u.what == "admin user") {
					continue // secrets may share an admin
				}
				r.Add(s.line(u.field), fmt.Sprintf("secrets[%d].%s", i, u.field),
					"%s %s is also the %s of secrets[%d] (%s:%d) on node %s; the two secrets would remove each other's passwords: give each secret its own ACL user",
					u.what, quoteValue(u.name), prev.what, prev.secret, inv.Path, inv.Secrets[prev.secret].line(prev.field), quoteValue(n))
				break
			}
		}
	}
}

// splitNode splits a host:port already checked by NodeProblem.
func splitNode(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return host, p
}
