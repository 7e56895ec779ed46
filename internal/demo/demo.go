// Package demo prepares the targets of `keyturn dev` and of the end-to-end tests: a local
// CA kept in the file store with a certificate to rotate (needs nothing installed), and a
// throwaway PostgreSQL cluster with scram-sha-256 auth, a group role holding the
// privileges and a least-privilege admin whose password lives in the file store. It shows
// on a fresh machine what adopting a real database takes.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/pgcluster"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// Options configure the demo.
type Options struct {
	// InventoryPath is where the generated inventory is written, and CRLFile where the
	// demo CA publishes its revocation list (the state directory names both).
	InventoryPath, CRLFile string
	// Store receives the admin password.
	Store  *file.Store
	Logger *slog.Logger
	// StoreType is where the demo secret's versions go: "file" (default), "vault" or
	// "awssm". The admin password stays in the file store.
	StoreType string
	// NoPostgres leaves the demo PostgreSQL out even where it could start: the demo is the
	// certificate alone.
	NoPostgres bool
}

// Env is a running demo.
type Env struct {
	// InventoryPath is the generated inventory.
	InventoryPath string
	// Cluster is the demo PostgreSQL; nil when this machine has no PostgreSQL server.
	Cluster *pgcluster.Cluster
}

// Stop stops the demo cluster, if one was started.
func (e *Env) Stop() {
	if e.Cluster != nil {
		_ = e.Cluster.Stop()
	}
}

// Start seeds the dev CA and writes an inventory with a certificate from it, which needs
// nothing but this process; when PostgreSQL's server programs are installed it also starts
// a throwaway cluster and adds a prepared Postgres role.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if err := os.MkdirAll(filepath.Dir(opts.InventoryPath), 0o700); err != nil {
		return nil, err
	}
	if _, err := EnsureCA(ctx, opts.Store); err != nil {
		return nil, err
	}
	env := &Env{InventoryPath: opts.InventoryPath}
	yaml := Inventory(nil) + CertInventory([]CertSecret{DemoCert(opts.CRLFile, opts.StoreType)})
	if opts.NoPostgres {
		return env, os.WriteFile(env.InventoryPath, []byte(yaml), 0o600)
	}
	c, err := pgcluster.Start(pgcluster.Options{})
	if err != nil {
		if opts.Logger != nil {
			opts.Logger.Warn("no demo PostgreSQL, so the demo rotates the certificate only", "reason", err)
		}
	} else {
		t := Target{Host: c.Host, Port: c.Port, Database: "demo", Role: "app", Admin: "keyturn_admin", AdminRef: "demo/admin"}
		if err := Prepare(ctx, c, opts.Store, t); err != nil {
			_ = c.Stop()
			return nil, err
		}
		env.Cluster = c
		// The revoke gate is on, so that a session left open with the old password holds
		// the revoke (and says whose it is) instead of being cut off: what a user of the
		// demo should see first.
		yaml += entries([]Secret{{ID: "demo/app", Target: t, Strategy: "alternating", Grace: "10s", CheckQuery: "SELECT count(*) FROM orders", Store: opts.StoreType,
			RevokeGate: "{wait: until_unused, max_wait: 2m, then: hold, poll: 5s}"}})
		if opts.Logger != nil {
			opts.Logger.Info("demo PostgreSQL started", "addr", fmt.Sprintf("%s:%d", c.Host, c.Port), "role", t.Role, "admin", t.Admin)
		}
	}
	if err := os.WriteFile(env.InventoryPath, []byte(yaml), 0o600); err != nil {
		env.Stop()
		return nil, err
	}
	return env, nil
}

// Target describes a prepared Postgres target.
type Target struct {
	Host     string
	Port     int
	Database string
	// Role is the group role that owns the privileges; Keyturn rotates logins into it.
	Role string
	// Admin is the least-privilege role Keyturn logs in as.
	Admin string
	// AdminRef is where the admin password is kept in the file store.
	AdminRef secret.ID
}

// Prepare creates, as the cluster's superuser, what an operator creates once when adopting
// a database: the group role, a table it owns, and the admin role with exactly the
// privileges the Postgres rotator documents (LOGIN CREATEROLE, pg_signal_backend to end
// sessions, and on PostgreSQL 16+ ADMIN OPTION on the group role). The admin's random password is set as a SCRAM
// verifier and stored in the file store. Running it again is harmless.
func Prepare(ctx context.Context, c *pgcluster.Cluster, store *file.Store, t Target) error {
	conn, err := c.ConnectSuper(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	password, err := randomPassword()
	if err != nil {
		return err
	}
	verifier, err := postgres.SCRAMVerifier(password)
	if err != nil {
		return err
	}
	role, admin := pgx.Identifier{t.Role}.Sanitize(), pgx.Identifier{t.Admin}.Sanitize()
	stmts := []string{
		fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s NOLOGIN; END IF; END $$`, quote(t.Role), role),
		fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN CREATE ROLE %s LOGIN CREATEROLE; END IF; END $$`, quote(t.Admin), admin),
		fmt.Sprintf(`ALTER ROLE %s WITH LOGIN CREATEROLE PASSWORD %s`, admin, quote(verifier)),
		fmt.Sprintf(`GRANT pg_signal_backend TO %s`, admin),
		// The revoke gate reads who is still logged in as an old twin; without it the
		// server hides other roles' session details.
		fmt.Sprintf(`GRANT pg_read_all_stats TO %s`, admin),
	}
	// PostgreSQL 16 took the right to grant any role away from CREATEROLE; there the admin
	// needs ADMIN OPTION on the group role, without inheriting its privileges. On 15 that
	// grant would make the admin a member that can read the application's data.
	var serverVersion int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&serverVersion); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	if serverVersion >= 160000 {
		stmts = append(stmts, fmt.Sprintf(`GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`, role, admin))
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("prepare target roles: %w", err)
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, t.Database).Scan(&exists); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, pgx.Identifier{t.Database}.Sanitize(), role)); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	db, err := c.ConnectSuper(ctx, t.Database)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	for _, s := range []string{
		`CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, item text NOT NULL)`,
		fmt.Sprintf(`ALTER TABLE orders OWNER TO %s`, role),
		`INSERT INTO orders (item) SELECT 'first order' WHERE NOT EXISTS (SELECT 1 FROM orders)`,
	} {
		if _, err := db.Exec(ctx, s); err != nil {
			return fmt.Errorf("prepare demo table: %w", err)
		}
	}
	if _, err := store.Put(ctx, t.AdminRef, secret.Material{"password": password}, map[string]string{"username": t.Admin}); err != nil {
		return fmt.Errorf("store admin password: %w", err)
	}
	return nil
}

func randomPassword() (secret.Sensitive, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return secret.Sensitive{}, err
	}
	return secret.NewSensitive(base64.RawURLEncoding.EncodeToString(b)), nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Secret is one entry of a generated inventory.
type Secret struct {
	ID         secret.ID
	Target     Target
	Strategy   string
	Grace      string
	CheckQuery string
	// TerminateSessions ends revoked roles' sessions.
	TerminateSessions bool
	// Store is the store type; empty means the default (file).
	Store string
	// AdminPassword is the admin password reference; empty means file:<Target.AdminRef>.
	AdminPassword string
	// Owner and MaxAge are the secret's owner and max_age; empty leaves them out.
	Owner, MaxAge string
	// RevokeGate is the secret's revoke_gate block as flow YAML ("{wait: until_unused}");
	// empty leaves it out.
	RevokeGate string
}

// Inventory renders an inventory file for the secrets.
func Inventory(secrets []Secret) string {
	return "# Generated by keyturn: a demo inventory.\nversion: 1\nsecrets:\n" + entries(secrets)
}

// entries renders the inventory entries of Postgres secrets.
func entries(secrets []Secret) string {
	var b strings.Builder
	for _, s := range secrets {
		fmt.Fprintf(&b, "  - id: %s\n    kind: postgres\n    grace: %s\n    tags: [demo]\n", s.ID, s.Grace)
		if s.Store != "" {
			fmt.Fprintf(&b, "    store: {type: %s}\n", s.Store)
		}
		if s.Owner != "" {
			fmt.Fprintf(&b, "    owner: %s\n", s.Owner)
		}
		if s.MaxAge != "" {
			fmt.Fprintf(&b, "    max_age: %s\n", s.MaxAge)
		}
		if s.RevokeGate != "" {
			fmt.Fprintf(&b, "    revoke_gate: %s\n", s.RevokeGate)
		}
		b.WriteString("    postgres:\n")
		fmt.Fprintf(&b, "      host: %s\n      port: %d\n      database: %s\n      sslmode: disable\n", s.Target.Host, s.Target.Port, s.Target.Database)
		fmt.Fprintf(&b, "      role: %s\n      strategy: %s\n", s.Target.Role, s.Strategy)
		adminRef := "file:" + string(s.Target.AdminRef)
		if s.AdminPassword != "" {
			adminRef = s.AdminPassword
		}
		fmt.Fprintf(&b, "      admin:\n        username: %s\n        password: %q\n", s.Target.Admin, adminRef)
		if s.CheckQuery != "" {
			fmt.Fprintf(&b, "      check_query: %q\n", s.CheckQuery)
		}
		if s.TerminateSessions {
			b.WriteString("      terminate_sessions: true\n")
		}
	}
	return b.String()
}
