package postgres

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// noticeLog collects the notices the server sends a rotator's sessions.
type noticeLog struct {
	mu  sync.Mutex
	got []string
}

func (l *noticeLog) add(n *pgconn.Notice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, n.Severity+" "+n.Code+": "+n.Message)
}

// TestNoNotices runs rotations and revokes of both strategies, as the least-privilege
// admin, and listens for NOTICEs on every session. Before, each Apply of the alternating
// strategy drew "permission will be denied to set role" from ALTER ROLE ... SET role.
func TestNoNotices(t *testing.T) {
	for _, strategy := range []string{StrategyAlternating, StrategySingle} {
		t.Run(strategy, func(t *testing.T) {
			cfg := newConfig(t, strategy)
			cfg.TerminateSessions = true
			r := mustNew(t, cfg)
			var log noticeLog
			r.onNotice = log.add
			s := &step{t: t, r: r}
			v1, _ := s.rotate(nil)
			v2, _ := s.rotate(&v1)
			if err := s.revoke(v1, &v2); err != nil {
				t.Fatal(err)
			}
			v3, _ := s.rotate(&v2)
			if err := s.revoke(v2, &v3); err != nil {
				t.Fatal(err)
			}
			if len(log.got) != 0 {
				t.Errorf("the server sent %d notice(s): %q", len(log.got), log.got)
			}
			if strategy != StrategyAlternating {
				return
			}
			// The default role is still set on both twins.
			super := superConn(t)
			for _, twin := range r.cfg.Twins {
				var n int
				err := super.QueryRow(t.Context(), `SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles u ON u.oid = s.setrole
					WHERE u.rolname = $1 AND $2 = ANY (s.setconfig)`, twin, fmt.Sprintf("role=%s", cfg.Role)).Scan(&n)
				if err != nil || n != 1 {
					t.Errorf("twin %s: role setting found %d times (%v), want once", twin, n, err)
				}
			}
		})
	}
}

// TestCreateRoleAdminCanJoinGroupRole records what the documentation says a CREATEROLE
// admin can do: on PostgreSQL 15 it can grant itself the group role, which it was never
// given, then act as that role and read the application's data. On 16 and later
// CREATEROLE reaches only roles held WITH ADMIN OPTION, so a role the admin has no ADMIN
// OPTION on is out of reach.
func TestCreateRoleAdminCanJoinGroupRole(t *testing.T) {
	super := superConn(t)
	admin, password := createAdmin(t, "CREATEROLE")
	group, table := unique("app"), unique("private")
	exec(t, super, fmt.Sprintf("CREATE ROLE %s NOLOGIN", ident(group)))
	exec(t, super, fmt.Sprintf("CREATE TABLE %s (secret text)", ident(table)))
	exec(t, super, fmt.Sprintf("INSERT INTO %s VALUES ('application data')", ident(table)))
	exec(t, super, fmt.Sprintf("GRANT SELECT ON %s TO %s", ident(table), ident(group)))

	conn := connectDSN(t, cluster.DSN(admin, password.Reveal(), "postgres"))
	_, err := conn.Exec(t.Context(), fmt.Sprintf("GRANT %s TO %s", ident(group), ident(admin)))
	if serverVersion(t, super) >= 160000 {
		if err == nil {
			t.Fatalf("PostgreSQL 16+: a CREATEROLE admin without ADMIN OPTION granted itself %s", group)
		}
		return
	}
	if err != nil {
		t.Fatalf("PostgreSQL 15: GRANT %s to the CREATEROLE admin itself = %v, want success (as documented)", group, err)
	}
	exec(t, conn, fmt.Sprintf("SET ROLE %s", ident(group)))
	var got string
	if err := conn.QueryRow(t.Context(), fmt.Sprintf("SELECT secret FROM %s", ident(table))).Scan(&got); err != nil || got != "application data" {
		t.Fatalf("PostgreSQL 15: reading the group role's table as the admin = %q, %v; want the row", got, err)
	}
}
