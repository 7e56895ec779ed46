// Package testenv starts the real servers the end-to-end tests and benchmarks need, in the
// test process: an embedded Temporal server (SQLite in memory), a throwaway PostgreSQL
// cluster with scram-sha-256 auth, a prepared target and the file store, plus a worker.
// Under CI=true a server that cannot start fails the test; it never becomes a skip.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/devserver"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/temporalpg"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// TemporalServer is the Temporal server of a test.
type TemporalServer interface {
	FrontendAddr() string
	Namespace() string
	// Stop stops the server before the test ends (to test what happens without it).
	Stop() error
}

// TemporalEnv names the environment variable that picks the server: unset or "embedded"
// for the embedded server (devserver, SQLite in memory, what `keyturn dev` runs);
// "postgres" for the server's own binary as a separate process persisted in PostgreSQL
// (temporalpg, the layout production uses), e.g. `make bench-incident TEMPORAL=postgres`.
const TemporalEnv = "KEYTURN_TEST_TEMPORAL"

// Temporal starts the server TemporalEnv names, with Keyturn's search attributes in its
// namespace and in each of extraNamespaces, and stops it when the test ends.
func Temporal(t testing.TB, logger *slog.Logger, extraNamespaces ...string) TemporalServer {
	t.Helper()
	switch v := os.Getenv(TemporalEnv); v {
	case "", "embedded":
		return embedded(t, logger, extraNamespaces...)
	case "postgres":
		return temporalpg.Start(t, logger, extraNamespaces...)
	default:
		t.Fatalf("%s=%q: use embedded (the default) or postgres", TemporalEnv, v)
		return nil
	}
}

// embedded starts an in-memory embedded Temporal server on a free port.
func embedded(t testing.TB, logger *slog.Logger, extraNamespaces ...string) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		FrontendAddr:     "127.0.0.1:0",
		ExtraNamespaces:  extraNamespaces,
		DisableUI:        true,
		SearchAttributes: workflows.SearchAttributes(),
		Logger:           logger,
	})
	if err != nil {
		t.Fatalf("start embedded Temporal server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// Client dials the server; with a codec, payloads are encrypted as in production.
func Client(t testing.TB, srv TemporalServer, logger *slog.Logger, payloadCodec *codec.Codec) client.Client {
	t.Helper()
	return dial(t, client.Options{HostPort: srv.FrontendAddr(), Namespace: srv.Namespace(), Logger: log.NewStructuredLogger(logger)}, payloadCodec)
}

// dial connects with opts, encrypting payloads with payloadCodec when there is one, and
// closes the client when the test ends.
func dial(t testing.TB, opts client.Options, payloadCodec *codec.Codec) client.Client {
	t.Helper()
	if payloadCodec != nil {
		opts.DataConverter = codec.DataConverter(payloadCodec)
		opts.FailureConverter = codec.FailureConverter(opts.DataConverter)
	}
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("dial Temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Env is a complete Keyturn installation for a test.
type Env struct {
	Server    TemporalServer
	Client    client.Client
	Cluster   *pgtest.Cluster
	Store     *file.Store
	StoreDir  string
	Inventory *inventory.Inventory
	// InventoryPath is the inventory file, for CLI commands.
	InventoryPath string
	// CodecKeyFile holds the payload encryption key; Codec is built from it.
	CodecKeyFile string
	// Schedules is what the env's workers pause schedules with; nil pauses nothing.
	Schedules activities.SchedulePauser
	Codec     *codec.Codec
	Logger    *slog.Logger
	// Logs holds everything the worker and the server logged, for leak scans.
	Logs *SyncBuffer
	// Backends are the stores the worker resolves secrets in.
	Backends binding.Backends
	// Audit is the audit trail the env's workers record to: a file sink in AuditDir,
	// checkpoints signed with the key in AuditKey. CLI commands get both as flags.
	Audit    *audit.Log
	AuditDir string
	AuditKey string
	// Urgency, when set, is held by the env's workers while they contain (as `keyturn
	// worker` holds its sweep's gate); set it before starting a worker.
	Urgency activities.Urgency
}

// Options adjust New.
type Options struct {
	// Secrets are the inventory's entries; Target is filled in from the cluster. Default:
	// one alternating secret "e2e/app" with grace 0s.
	Secrets []demo.Secret
	// NoWorker leaves starting a worker to the test (for crash tests with a separate process).
	NoWorker bool
	// PostgresSettings are extra server settings, e.g. log_statement=all.
	PostgresSettings map[string]string
	// Backends are the stores besides the file store the worker may use (Vault, AWS).
	Backends binding.Backends
	// SeedAdmin, when set, receives the admin password after the targets are prepared,
	// to copy it into another store for a vault: or awssm: reference.
	SeedAdmin func(ctx context.Context, password secret.Sensitive) error
	// Extra is YAML appended to the generated inventory's secrets list: entries of the
	// other kinds. With Extra and no Secrets, the inventory has no Postgres secret.
	Extra string
	// Schedules, when set, lets incidents pause schedules (schedules.Pauser; testenv
	// cannot import the schedules package, whose tests use testenv).
	Schedules activities.SchedulePauser
	// Seed, when set, runs before the inventory is loaded, to put what Extra's references
	// point at into the file store (an admin token, a CA).
	Seed func(ctx context.Context, store *file.Store) error
	// ExtraNamespaces are registered on the server beside its own, with Keyturn's search
	// attributes: a second worker there (DialWith, StartWorkerOn) never takes the tasks of
	// the first, though both poll Keyturn's task queue.
	ExtraNamespaces []string
}

// New starts Temporal, PostgreSQL, prepares each secret's target (one group role per
// secret, sharing one admin), writes the inventory and starts an in-process worker.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	logs := &SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := &Env{Logger: logger, Logs: logs}
	env.Cluster = pgtest.ForTestWith(t, pgtest.Options{Settings: opts.PostgresSettings})
	dir := t.TempDir()
	env.StoreDir = filepath.Join(dir, "store")
	store, err := file.Open(env.StoreDir)
	if err != nil {
		t.Fatalf("open file store: %v", err)
	}
	env.Store = store

	secrets := opts.Secrets
	if len(secrets) == 0 && opts.Extra == "" {
		secrets = []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s"}}
	}
	ctx := context.Background()
	for i := range secrets {
		s := &secrets[i]
		if s.Target.Role == "" {
			s.Target.Role = "app"
		}
		s.Target.Host, s.Target.Port, s.Target.Database = env.Cluster.Host, env.Cluster.Port, "demo"
		s.Target.Admin, s.Target.AdminRef = "keyturn_admin", secret.ID("admin/e2e")
		if err := demo.Prepare(ctx, env.Cluster, store, s.Target); err != nil {
			t.Fatalf("prepare target %s: %v", s.ID, err)
		}
	}
	if opts.SeedAdmin != nil {
		_, m, err := store.Read(ctx, "admin/e2e", secret.StageCurrent)
		if err != nil {
			t.Fatal(err)
		}
		if err := opts.SeedAdmin(ctx, m.Get("password")); err != nil {
			t.Fatalf("seed the admin password: %v", err)
		}
	}
	if opts.Seed != nil {
		if err := opts.Seed(ctx, store); err != nil {
			t.Fatalf("seed the file store: %v", err)
		}
	}
	env.Schedules = opts.Schedules
	env.Backends = opts.Backends
	env.Backends.File = store
	env.InventoryPath = filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(env.InventoryPath, []byte(demo.Inventory(secrets)+opts.Extra), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(env.InventoryPath)
	if err != nil {
		t.Fatalf("load generated inventory: %v", err)
	}
	env.Inventory = inv

	env.CodecKeyFile = filepath.Join(dir, "codec.key")
	keys, err := codec.LoadKeyFile(env.CodecKeyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	if env.Codec, err = codec.New(keys...); err != nil {
		t.Fatal(err)
	}
	env.openAudit(t, dir)
	env.Server = Temporal(t, logger, opts.ExtraNamespaces...)
	env.Client = Client(t, env.Server, logger, env.Codec)
	if !opts.NoWorker {
		env.StartWorker(t)
	}
	return env
}

// openAudit gives the env the audit trail `keyturn worker` keeps by default: a file sink
// in dir/audit, checkpoints signed with dir/audit.key.
func (e *Env) openAudit(t testing.TB, dir string) {
	t.Helper()
	e.AuditDir, e.AuditKey = filepath.Join(dir, "audit"), filepath.Join(dir, "audit.key")
	sink, err := audit.OpenFile(e.AuditDir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.LoadOrCreateSigningKey(e.AuditKey)
	if err != nil {
		t.Fatal(err)
	}
	e.Audit = &audit.Log{Sink: sink, Signer: signer, Logger: e.Logger}
}

// StartWorker starts an in-process worker over the env's inventory and store.
func (e *Env) StartWorker(t testing.TB) sdkworker.Worker {
	t.Helper()
	return e.StartWorkerOn(t, e.Client, nil)
}

// StartWorkerOn starts an in-process worker over the env's inventory and store on c (a
// client from DialWith, say), recording Keyturn's own metrics on tel when it is not nil,
// as `keyturn worker` does, and its changes on e.Audit when that is not nil. It stops when the test ends; stopping it earlier is harmless.
func (e *Env) StartWorkerOn(t testing.TB, c client.Client, tel *telemetry.Telemetry) sdkworker.Worker {
	t.Helper()
	backends := e.Backends
	if tel != nil {
		backends.TracerProvider = tel.TracerProvider() // calls to targets and stores traced, as in `keyturn worker`
	}
	extras := []worker.Option{worker.WithSchedules(e.Schedules), worker.WithTelemetry(tel)}
	if e.Audit != nil { // nil when a test (a benchmark's "off" side) wants no audit trail
		extras = append(extras, worker.WithAudit(e.Audit))
	}
	if e.Urgency != nil {
		extras = append(extras, worker.WithUrgency(e.Urgency))
	}
	resolver := binding.New(e.Inventory, backends)
	t.Cleanup(func() { _ = resolver.Close() }) // after w.Stop: cleanups run last first
	w := worker.New(c, resolver, sdkworker.Options{}, extras...)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return w
}

// DialWith dials a namespace of the env's server (its own or one of
// Options.ExtraNamespaces) with the env's payload codec and tel's instrumentation, as
// `keyturn worker` dials: tel's tracing interceptor (none when tel does not trace) and
// the Temporal SDK's metrics on tel's meter. A worker on this client inherits both.
func (e *Env) DialWith(t testing.TB, namespace string, tel *telemetry.Telemetry) client.Client {
	t.Helper()
	interceptors, err := tel.Interceptors()
	if err != nil {
		t.Fatalf("tracing interceptor: %v", err)
	}
	return dial(t, client.Options{
		HostPort: e.Server.FrontendAddr(), Namespace: namespace, Logger: log.NewStructuredLogger(e.Logger),
		Interceptors: interceptors, MetricsHandler: tel.TemporalMetrics(e.Logger),
	}, e.Codec)
}

// Resolver returns a resolver like the worker's, for direct checks in tests. It holds
// admin sessions (see postgres.Pools) until it is closed when the test ends, so a test
// builds one and reuses it.
func (e *Env) Resolver(t testing.TB) *binding.Resolver {
	r := binding.New(e.Inventory, e.Backends)
	t.Cleanup(func() { _ = r.Close() })
	return r
}
