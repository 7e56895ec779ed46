package inventory

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// roleUse is one role name a postgres secret touches on its server.
type roleUse struct {
	secret int    // index in Inventory.Secrets
	field  string // relative to the secret, e.g. postgres.twins[1]
	at     string // the field whose line to report: twins named after the role are at it
	what   string // how the secret uses it, for the message
	name   string // the role name
}

// validateRoleOverlap refuses two postgres secrets that touch the same role on the same
// server. Roles are cluster-wide, not per database: two secrets sharing a group role, a
// twin or a login role would rotate each other's passwords and mix privileges, and a
// secret rotating another's admin account would lock Keyturn out. Each clash is reported
// at the later secret's field and names the earlier one's place. skip says which secrets
// to leave out (duplicate IDs, reported already).
func (inv *Inventory) validateRoleOverlap(r *report, skip func(i int) bool) {
	type key struct{ server, role string }
	managed := make(map[key]roleUse, 3*len(inv.Secrets)) // a size hint: a group role and two twins each
	admins := map[key]roleUse{}
	place := func(u roleUse) string {
		s := &inv.Secrets[u.secret]
		return fmt.Sprintf("secrets[%d] (%s:%d)", u.secret, inv.Path, s.line(u.at))
	}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		p := s.Postgres
		if s.Kind != KindPostgres || p == nil || skip(i) || strings.TrimSpace(p.Host) == "" {
			continue
		}
		server := serverKey(p.Host, p.Port)
		clash := func(u roleUse, name string, prev roleUse) {
			r.Add(s.line(u.at), fmt.Sprintf("secrets[%d].%s", i, u.field),
				"%s %s is also %s of %s on the same server; PostgreSQL roles belong to the whole server, so the two secrets would rotate each other's roles and mix their privileges: give each secret its own roles",
				u.what, quoteValue(name), prev.what, place(prev))
		}
		for _, u := range managedRoles(i, s) {
			name := u.name
			k := key{server, name}
			if prev, ok := managed[k]; ok {
				clash(u, name, prev)
				continue
			}
			if prev, ok := admins[k]; ok {
				clash(u, name, prev)
				continue
			}
			managed[k] = u
		}
		if p.Admin.Username == "" {
			continue
		}
		u := roleUse{secret: i, field: "postgres.admin.username", at: "postgres.admin.username", what: "admin username"}
		k := key{server, p.Admin.Username}
		if prev, ok := managed[k]; ok && prev.secret != i {
			clash(u, p.Admin.Username, prev)
		}
		if _, ok := admins[k]; !ok {
			admins[k] = u // secrets may share an admin; the first is the one to name
		}
	}
}

// managedRoles returns the roles a postgres secret changes, in file order: the group
// role, and for the alternating strategy its twins. With the single strategy the group
// role is also the login role whose password changes. A name repeated within the secret
// is listed once; validateTwins reports it.
func managedRoles(i int, s *Secret) []roleUse {
	p := s.Postgres
	var out []roleUse
	add := func(field, what, name string) {
		for _, u := range out {
			if u.name == name {
				return
			}
		}
		at := field
		if !s.pos.has(field) {
			at = "postgres.role" // a defaulted twin: its name comes from the role
		}
		out = append(out, roleUse{secret: i, field: field, at: at, what: what, name: name})
	}
	if p.Role != "" {
		what := "group role"
		if p.Strategy == StrategySingle {
			what = "login role"
		}
		add("postgres.role", what, p.Role)
	}
	if p.Strategy == StrategyAlternating && len(p.Twins) == 2 {
		for j, twin := range p.Twins {
			add(fmt.Sprintf("postgres.twins[%d]", j), "twin", twin)
		}
	}
	return out
}

// serverKey names a PostgreSQL server for comparing secrets: host and port, with the
// host's case, a trailing dot and IPv6 brackets ignored, and the loopback names
// (localhost, 127.0.0.0/8, ::1) taken as one. Other aliases of one server (two DNS names,
// a name and its address) are not resolved: validation does not touch the network.
func serverKey(host string, port int) string {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if isLoopback(h) {
		h = "localhost"
	} else if ip := net.ParseIP(h); ip != nil {
		h = ip.String()
	}
	return net.JoinHostPort(h, strconv.Itoa(port))
}
