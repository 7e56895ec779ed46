package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
)

// vaultAnchorDB is the name of the anchor's connection in Vault's database engine.
const vaultAnchorDB = "anchor"

// measureVaultStaticRotate measures the anchor Keyturn's rotation is compared with: Vault's
// database engine rotating a PostgreSQL static role (POST database/rotate-role/<name>),
// which is one ALTER ROLE with no test of the new password and no grace period. It starts
// a Vault dev server (bin/vaultdev, which links the engine and its PostgreSQL plugin
// in-process), connects it to cluster as the superuser, gives it a fresh login role of its
// own, warms up with three rotations, then times n rotations in a row, each the wall time
// of one HTTP request, and returns their p50 and p95. Measuring it in the same run, on the
// same machine and the same kind of cluster, is what makes the comparison fair. The role
// is dropped when the benchmark ends; any failure fails the benchmark.
func measureVaultStaticRotate(b *testing.B, cluster *pgtest.Cluster, n int) (p50, p95 time.Duration) {
	b.Helper()
	if n < 1 {
		b.Fatalf("vault anchor: need at least one rotation to time, got n=%d", n)
	}
	ctx := context.Background()
	superPassword := cluster.SuperPassword.Reveal()
	rolePassword := rand.Text()
	// fatal fails the benchmark without printing either password, whatever Vault or the
	// server put in the error.
	fatal := func(op string, err error) {
		b.Helper()
		b.Fatalf("vault anchor: %s: %v", op, secret.ScrubError(err, []string{superPassword, rolePassword}))
	}

	// The role Vault rotates. Its name is random so that two anchors on one cluster, or a
	// role left by an earlier run, cannot collide.
	role := "vault_anchor_" + strings.ToLower(rand.Text()[:10])
	conn, err := cluster.ConnectSuper(ctx, "postgres")
	if err != nil {
		fatal("connect as superuser", err)
	}
	// rand.Text is base32: the password needs no escaping inside the quotes.
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), rolePassword))
	conn.Close(ctx)
	if err != nil {
		fatal("create role", err)
	}
	// Registered before Vault starts, so it runs after Vault has stopped and nothing
	// holds or rotates the role any more.
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := cluster.ConnectSuper(ctx, "postgres")
		if err != nil {
			b.Errorf("vault anchor: drop role: %v", secret.ScrubError(err, []string{superPassword}))
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			b.Errorf("vault anchor: drop role: %v", err)
		}
	})

	vc := vaulttest.Start(b, vaulttest.Options{}).Client(b)
	if err := vc.Sys().MountWithContext(ctx, "database", &api.MountInput{Type: "database"}); err != nil {
		fatal("enable the database secrets engine", err)
	}
	_, err = vc.Logical().WriteWithContext(ctx, "database/config/"+vaultAnchorDB, map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": "postgresql://{{username}}:{{password}}@" + net.JoinHostPort(cluster.Host, strconv.Itoa(cluster.Port)) + "/postgres?sslmode=disable",
		"username":       cluster.SuperUser,
		"password":       superPassword,
		"allowed_roles":  role,
	})
	if err != nil {
		fatal("configure the connection", err)
	}
	// Creating a static role rotates its password once already.
	_, err = vc.Logical().WriteWithContext(ctx, "database/static-roles/"+role, map[string]any{
		"db_name":         vaultAnchorDB,
		"username":        role,
		"rotation_period": "24h",
	})
	if err != nil {
		fatal("create the static role", err)
	}

	rotate := func() time.Duration {
		start := time.Now()
		if _, err := vc.Logical().WriteWithContext(ctx, "database/rotate-role/"+role, nil); err != nil {
			fatal("rotate the static role", err)
		}
		return time.Since(start)
	}
	for range 3 { // warm up the connection pools on both sides
		rotate()
	}
	times := make([]time.Duration, 0, n)
	for range n {
		times = append(times, rotate())
	}

	// Untimed: the password Vault holds now logs in, so what was timed really changed it.
	creds, err := vc.Logical().ReadWithContext(ctx, "database/static-creds/"+role)
	if err != nil {
		fatal("read the static credentials", err)
	}
	current, _ := creds.Data["password"].(string)
	if current == "" {
		b.Fatal("vault anchor: read the static credentials: no password in the response")
	}
	check, err := pgx.Connect(ctx, cluster.DSN(role, current, "postgres"))
	if err != nil {
		fatal("log in with the rotated password", secret.ScrubError(err, []string{current}))
	}
	check.Close(ctx)

	return percentile(times, 50), percentile(times, 95)
}

// BenchmarkVaultStaticRotate reports the anchor alone, on a durable cluster of its own
// (fsync on, as BenchmarkRotationVsNoop's): the time Vault's database engine takes to
// rotate a PostgreSQL static role. Every round starts its own cluster and Vault, and the
// testing package runs a round of one first, so give it a fixed number of rotations
// (-benchtime 40x, as make bench does) rather than a duration.
func BenchmarkVaultStaticRotate(b *testing.B) {
	cluster := pgtest.ForTestWith(b, pgtest.Options{Settings: map[string]string{"fsync": "on"}})
	p50, p95 := measureVaultStaticRotate(b, cluster, b.N)
	b.ReportMetric(ms(p50), "vault-rotate-p50-ms")
	b.ReportMetric(ms(p95), "vault-rotate-p95-ms")
	b.ReportMetric(0, "ns/op") // the per-op time includes starting Vault; the metrics above are the figures
}
