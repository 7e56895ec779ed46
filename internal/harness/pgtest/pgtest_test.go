package pgtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var cluster *Cluster

func TestMain(m *testing.M) {
	os.Exit(Main(m, &cluster, Options{Settings: map[string]string{"application_name": "pgtest self test"}}))
}

func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

// TestPasswordIsChecked proves the cluster checks passwords with SCRAM: the right one logs
// in, a wrong one is refused.
func TestPasswordIsChecked(t *testing.T) {
	c := Need(t, cluster)

	conn, err := connect(t, c.SuperDSN())
	if err != nil {
		t.Fatalf("connect with the right password: %v", err)
	}
	defer conn.Close(context.Background())
	var methods []string
	err = conn.QueryRow(t.Context(),
		`SELECT array_agg(DISTINCT auth_method) FROM pg_hba_file_rules`).Scan(&methods)
	if err != nil {
		t.Fatalf("read pg_hba rules: %v", err)
	}
	if len(methods) != 1 || methods[0] != "scram-sha-256" {
		t.Errorf("pg_hba auth methods = %q, want only scram-sha-256", methods)
	}
	var stored string
	if err := conn.QueryRow(t.Context(), `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, c.SuperUser).Scan(&stored); err != nil {
		t.Fatalf("read superuser password: %v", err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$") {
		t.Errorf("superuser password is not stored as a SCRAM verifier")
	}

	_, err = connect(t, c.DSN(c.SuperUser, "wrong-"+c.SuperPassword.Reveal(), "postgres"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("connect with a wrong password: got %v, want SQLSTATE 28P01", err)
	}
}

// TestForTest starts and stops a second cluster, checking that Stop removes everything.
func TestForTest(t *testing.T) {
	if cluster == nil {
		Need(t, cluster)
	}
	var c *Cluster
	t.Run("inner", func(t *testing.T) {
		c = ForTest(t)
		if c.Port == cluster.Port {
			t.Fatalf("second cluster shares port %d", c.Port)
		}
		conn, err := connect(t, c.SuperDSN())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		conn.Close(context.Background())
	})
	if c == nil {
		t.Fatal("inner test did not start a cluster")
	}
	if _, err := c.ServerLog(); err == nil {
		t.Errorf("Stop left the cluster's files (its server log is still there)")
	}
	if _, err := connect(t, c.SuperDSN()); err == nil {
		t.Errorf("server still accepts connections after Stop")
	}
}
