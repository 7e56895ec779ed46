package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/mariadbtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// server is the package's one throwaway server; its general log records every statement.
var server *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &server)) }

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

const adminPass = "Mariadb-Admin-Password-91fe"

// newConfig makes a role that may read app.items, a least-privilege admin holding it
// WITH ADMIN OPTION, and, for the single strategy, the account itself.
func newConfig(t *testing.T, strategy string) Config {
	t.Helper()
	s := mariadbtest.Need(t, server)
	role, admin := unique("r"), unique("admin")
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS app", "CREATE TABLE IF NOT EXISTS app.items (x int)",
		"CREATE ROLE " + role, "GRANT SELECT ON app.* TO " + role,
	}
	cfg := Config{Host: s.Host, Port: s.Port, TLS: TLSDisable, Strategy: strategy, Role: role,
		AdminUser: admin, AdminPassword: secret.NewSensitive(adminPass), ConnectTimeout: 5 * time.Second}
	if strategy == StrategySingle {
		cfg.User = unique("u")
		stmts = append(stmts, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'before-keyturn' ACCOUNT LOCK", cfg.User),
			fmt.Sprintf("GRANT %s TO '%s'@'%%'", role, cfg.User), fmt.Sprintf("SET DEFAULT ROLE %s FOR '%s'@'%%'", role, cfg.User))
	}
	if err := s.Exec(t.Context(), stmts...); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdmin(t.Context(), admin, adminPass, role); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustNew(t *testing.T, cfg Config) *Rotator {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recording remembers every password it generated.
type recording struct {
	*Rotator
	mu        sync.Mutex
	passwords []string
}

func (r *recording) Generate(ctx context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	g, err := r.Rotator.Generate(ctx, req)
	if err == nil {
		r.mu.Lock()
		r.passwords = append(r.passwords, g.Material.Get(FieldPassword).Reveal())
		r.mu.Unlock()
	}
	return g, err
}

// wantNotInGeneralLog fails t if any password reached the server's general log, or if
// the log shows no ALTER USER (the check would prove nothing).
func wantNotInGeneralLog(t *testing.T, passwords []string) {
	t.Helper()
	log := server.GeneralLog()
	if !strings.Contains(log, "ALTER USER") {
		t.Fatal("the general log holds no ALTER USER: it is not on, and the check would prove nothing")
	}
	for _, p := range passwords {
		if strings.Contains(log, p) {
			t.Fatal("a password reached the general log in plain text")
		}
	}
}

func conformance(strategy string, check func(t *testing.T, cfg Config, prev, next secret.Version)) func(t *testing.T) {
	return func(t *testing.T) {
		mariadbtest.Need(t, server)
		var (
			mu   sync.Mutex
			cfgs = map[*testing.T]Config{}
			recs []*recording
		)
		h := rotatortest.Harness{
			New: func(t *testing.T) rotators.Rotator {
				cfg := newConfig(t, strategy)
				cfg.CheckQuery = "SELECT count(*) FROM app.items"
				rec := &recording{Rotator: mustNew(t, cfg)}
				mu.Lock()
				cfgs[t] = cfg
				recs = append(recs, rec)
				mu.Unlock()
				return rec
			},
		}
		if check != nil {
			h.AfterRotation = func(t *testing.T, prev, next secret.Version) {
				mu.Lock()
				cfg := cfgs[t]
				mu.Unlock()
				check(t, cfg, prev, next)
			}
		}
		rotatortest.Run(t, h)
		var all []string
		for _, r := range recs {
			all = append(all, r.passwords...)
		}
		if len(all) < 10 {
			t.Fatalf("the suite generated %d passwords; the log check would prove little", len(all))
		}
		wantNotInGeneralLog(t, all)
	}
}

func TestConformanceAlternating(t *testing.T) {
	conformance(StrategyAlternating, func(t *testing.T, cfg Config, prev, next secret.Version) {
		cfg.ApplyDefaults()
		p, n := prev.Metadata[MetadataUser], next.Metadata[MetadataUser]
		if p == n || (n != cfg.Twins[0] && n != cfg.Twins[1]) {
			t.Errorf("rotation went from %q to %q, want the other twin of %v", p, n, cfg.Twins)
		}
	})(t)
}

func TestConformanceSingle(t *testing.T) {
	conformance(StrategySingle, func(t *testing.T, cfg Config, prev, next secret.Version) {
		if prev.Metadata[MetadataUser] != cfg.User || next.Metadata[MetadataUser] != cfg.User {
			t.Errorf("single strategy used %q and %q, want %q", prev.Metadata[MetadataUser], next.Metadata[MetadataUser], cfg.User)
		}
	})(t)
}

// login tries user and password and runs a query that needs the role.
func login(t *testing.T, user, password string) error {
	t.Helper()
	db := server.Open(user, password)
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, "SELECT count(*) FROM app.items").Scan(&n)
}

var _ = sql.ErrNoRows
