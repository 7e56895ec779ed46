package pgsink

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
)

// cluster is the package's one throwaway server, with password authentication.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	// A killed-writer child appends until it is killed; it must not start a server.
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(pgtest.Main(m, &cluster, pgtest.Options{}))
}

// The roles of a production install: the owner installs, the writer (the workers) gets
// SELECT and INSERT.
const (
	ownerRole  = "keyturn_audit_owner"
	writerRole = "keyturn_audit_writer"
)

var (
	rolesOnce      sync.Once
	rolesErr       error
	ownerPassword  string
	writerPassword string
	schemaSeq      atomic.Int64
)

// roles creates the owner and writer roles, each with a password, once.
func roles(t *testing.T) *pgtest.Cluster {
	t.Helper()
	c := pgtest.Need(t, cluster)
	rolesOnce.Do(func() {
		ownerPassword, writerPassword = randomPassword(), randomPassword()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.SuperDSN())
		if err != nil {
			rolesErr = fmt.Errorf("connect as superuser: %w", err)
			return
		}
		defer conn.Close(ctx)
		for _, stmt := range []string{
			fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, ownerRole, ownerPassword),
			fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, writerRole, writerPassword),
			fmt.Sprintf(`GRANT CREATE ON DATABASE postgres TO %s`, ownerRole),
		} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				rolesErr = fmt.Errorf("create test roles: %w", sqlstateOnly(err))
				return
			}
		}
	})
	if rolesErr != nil {
		t.Fatal(rolesErr)
	}
	return c
}

// sqlstateOnly keeps a setup error's code and drops the statement, which holds a password.
func sqlstateOnly(err error) error {
	if code := sqlstate(err); code != "" {
		return fmt.Errorf("SQLSTATE %s", code)
	}
	return err
}

func randomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func ownerDSN(c *pgtest.Cluster) string  { return c.DSN(ownerRole, ownerPassword, "postgres") }
func writerDSN(c *pgtest.Cluster) string { return c.DSN(writerRole, writerPassword, "postgres") }

// freshSchema installs the sink in a new schema, as the owner, granting the writer.
func freshSchema(t *testing.T) string {
	t.Helper()
	c := roles(t)
	schema := fmt.Sprintf("audit_%d", schemaSeq.Add(1))
	if err := Install(t.Context(), ownerDSN(c), schema, writerRole); err != nil {
		t.Fatalf("install: %v", err)
	}
	return schema
}

// openWriter opens a sink on schema as the writer role: its own pool, like a separate
// worker process.
func openWriter(t *testing.T, schema string) *Sink {
	t.Helper()
	s, err := Open(t.Context(), writerDSN(roles(t)), schema)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// connect opens one connection for the length of the test.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
