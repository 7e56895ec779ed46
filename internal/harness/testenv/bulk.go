package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
)

// bulkBatch is how many group roles one round trip to the server creates: large enough
// that 10,000 roles take a few seconds, small enough that one statement stays short.
const bulkBatch = 500

// bulkAdmin is the admin role every bulk secret shares, and bulkAdminRef where its
// password is kept in the file store.
const (
	bulkAdmin    = "keyturn_admin"
	bulkAdminRef = secret.ID("admin/bulk")
)

// BulkOptions adjust NewBulk.
type BulkOptions struct {
	// N is the number of Postgres secrets, IDs <Prefix>00000 and up, each managing its own
	// group role with alternating twins.
	N int
	// Prefix starts every secret ID; default "bulk/s".
	Prefix string
	// PostgresSettings are extra server settings (max_connections for high parallelism).
	PostgresSettings map[string]string
}

// NewBulk is New for thousands of secrets: the admin role and the database are prepared
// once, the N group roles and their two twins each are created in batched transactions,
// and no worker is started (see StartWorkerWith). Preparing 10,000 roles with New's
// per-secret Prepare would take minutes and write the admin password 10,000 times.
func NewBulk(t testing.TB, opts BulkOptions) (*Env, []secret.ID) {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "bulk/s"
	}
	logs := &SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := &Env{Logger: logger, Logs: logs}
	env.Cluster = pgtest.ForTestWith(t, pgtest.Options{Settings: opts.PostgresSettings})
	dir := t.TempDir()
	env.StoreDir = filepath.Join(dir, "store")
	store, err := file.Open(env.StoreDir)
	if err != nil {
		t.Fatalf("open file store: %v", err)
	}
	env.Store = store
	ctx := context.Background()

	// The admin, the database and a group role that owns it, as an operator sets them up
	// once; then every secret's group role and twins in bulk.
	owner := demo.Target{
		Host: env.Cluster.Host, Port: env.Cluster.Port, Database: "demo",
		Role: "bulk_owner", Admin: bulkAdmin, AdminRef: bulkAdminRef,
	}
	if err := demo.Prepare(ctx, env.Cluster, store, owner); err != nil {
		t.Fatalf("prepare the admin role: %v", err)
	}
	secrets := make([]demo.Secret, opts.N)
	ids := make([]secret.ID, opts.N)
	roles := make([]string, opts.N)
	for i := range secrets {
		roles[i] = fmt.Sprintf("bulk_%05d", i)
		ids[i] = secret.ID(fmt.Sprintf("%s%05d", opts.Prefix, i))
		target := owner
		target.Role = roles[i]
		secrets[i] = demo.Secret{ID: ids[i], Target: target, Strategy: "alternating", Grace: "0s"}
	}
	start := time.Now()
	if err := CreateRoles(ctx, env.Cluster, bulkAdmin, roles); err != nil {
		t.Fatalf("create %d group roles: %v", len(roles), err)
	}
	t.Logf("created %d group roles and %d twins in %s", len(roles), 2*len(roles), time.Since(start).Round(time.Millisecond))

	env.Backends.File = store
	env.InventoryPath = filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(env.InventoryPath, []byte(demo.Inventory(secrets)), 0o600); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	inv, err := inventory.Load(env.InventoryPath)
	if err != nil {
		t.Fatalf("load generated inventory: %v", err)
	}
	env.Inventory = inv
	t.Logf("loaded an inventory of %d secrets in %s", len(inv.Secrets), time.Since(start).Round(time.Millisecond))

	env.CodecKeyFile = filepath.Join(dir, "codec.key")
	keys, err := codec.LoadKeyFile(env.CodecKeyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	if env.Codec, err = codec.New(keys...); err != nil {
		t.Fatal(err)
	}
	env.openAudit(t, dir) // a real worker's steps wait for their records; so do the benchmarks'
	env.Server = Temporal(t, logger)
	env.Client = Client(t, env.Server, logger, env.Codec)
	return env, ids
}

// CreateRoles creates, as the superuser, a NOLOGIN group role for each name and, as admin,
// its twins <name>_a and <name>_b (NOLOGIN INHERIT, members of the group, acting as it),
// which is what the first two rotations of the alternating strategy would do. Creating
// the twins as the admin makes it their manager on PostgreSQL 16+ as well. Roles that
// exist are an error: the cluster is meant to be fresh.
func CreateRoles(ctx context.Context, c *pgtest.Cluster, admin string, names []string) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", c.Host, c.Port, c.SuperUser))
	if err != nil {
		return err
	}
	cfg.Password = c.SuperPassword.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect as superuser: %w", err)
	}
	defer conn.Close(ctx)
	var serverVersion int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&serverVersion); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	adminIdent := pgx.Identifier{admin}.Sanitize()
	for lo := 0; lo < len(names); lo += bulkBatch {
		batch := names[lo:min(lo+bulkBatch, len(names))]
		var b strings.Builder
		b.WriteString("BEGIN;\n")
		for _, name := range batch {
			fmt.Fprintf(&b, "CREATE ROLE %s NOLOGIN;\n", pgx.Identifier{name}.Sanitize())
			if serverVersion >= 160000 {
				fmt.Fprintf(&b, "GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;\n", pgx.Identifier{name}.Sanitize(), adminIdent)
			}
		}
		fmt.Fprintf(&b, "SET LOCAL ROLE %s;\n", adminIdent)
		for _, name := range batch {
			group := pgx.Identifier{name}.Sanitize()
			for _, twin := range []string{name + "_a", name + "_b"} {
				fmt.Fprintf(&b, "CREATE ROLE %s NOLOGIN INHERIT IN ROLE %s;\n", pgx.Identifier{twin}.Sanitize(), group)
				fmt.Fprintf(&b, "ALTER ROLE %s SET role = '%s';\n", pgx.Identifier{twin}.Sanitize(), name)
			}
		}
		b.WriteString("COMMIT;\n")
		// No arguments: the simple protocol runs the whole batch in one round trip.
		if _, err := conn.Exec(ctx, b.String()); err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return fmt.Errorf("roles %s to %s: %w", batch[0], batch[len(batch)-1], err)
		}
	}
	return nil
}

// StartWorkerWith starts an in-process worker over the env's inventory with opts, and the
// given resolver (nil: the env's own), so a benchmark can tune and observe it. It records
// to e.Audit, as `keyturn worker` records to its default trail.
func (e *Env) StartWorkerWith(t testing.TB, resolver activities.Resolver, opts sdkworker.Options) sdkworker.Worker {
	t.Helper()
	if resolver == nil {
		resolver = e.Resolver(t)
	}
	var extras []worker.Option
	if e.Audit != nil {
		extras = append(extras, worker.WithAudit(e.Audit))
	}
	w := worker.New(e.Client, resolver, opts, extras...)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

// SeedVersions gives each secret a current version, as a first rotation would, by
// running Create and Promote through the resolver directly (no workflow), parallel
// at a time. It returns the first error.
func SeedVersions(ctx context.Context, r activities.Resolver, ids []secret.ID, parallel int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range max(1, parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if err := seedOne(ctx, r, ids[i]); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("seed %s: %w", ids[i], err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func seedOne(ctx context.Context, r activities.Resolver, id secret.ID) error {
	b, err := r.Resolve(ctx, id)
	if err != nil {
		return err
	}
	token := secret.VersionToken("seed/" + string(id))
	if _, err := b.Steps.Create(ctx, token); err != nil {
		return err
	}
	_, err = b.Steps.Promote(ctx, token)
	return err
}
