// Package consumerbench measures what issue 12 is about: whether the applications that use a
// rotated Postgres password keep working across real rotations. An embedded Temporal
// server and an in-process worker rotate a secret of a scram-sha-256 cluster back to back
// (alternating strategy, a short grace period, terminate_sessions on, so a revoke ends the
// old role's sessions the way it would cut off a forgotten consumer), while consumers run
// queries at a fixed rate:
//
//   - (a) a service using consumer.Cache and consumer/pgxconsumer with a pgxpool whose
//     connection lifetime is shorter than the grace period;
//   - (b) the same service connecting through PgBouncer in transaction pooling
//     (auth_type scram-sha-256 with auth_query, server connections shorter-lived than the
//     grace period; docs/pgbouncer.md);
//   - (c) a naive consumer that reads the password once at start and keeps one session,
//     on a secret of its own whose revoke_gate holds the revoke until the old login is
//     unused (by default), or without a gate (the control, which shows it break).
//
// TestConsumersSurviveRotations is the short version CI runs for (a) and (b): a handful
// of rotations, asserting 0 failed queries. TestNaiveConsumerHeldByGate is (c)'s: one
// revoke held with 0 failed queries, then going ahead once the session closes.
// BenchmarkConsumers (`make bench-consumers`) runs 100 rotations for (a) and (b) together
// and a few more with (c), and prints a table. There a failed query of (a) or (b), or one
// of their rotations not ending "rotated", fails the run; under a holding gate so does a
// revoke of (c) not held, a failed query of (c), or a revoke that does not go ahead after
// the close. Without a gate (c)'s figures are reported only.
package consumerbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// Secrets of the run, each rotating a group role of its own in database "demo".
const (
	// appSecret is what services (a) and (b) log in with (group role "app").
	appSecret secret.ID = "bench/app"
	// naiveSecret is what the naive consumer (c) logs in with (group role "naive"), so
	// that a revoke held for it never slows the rotations (a) and (b) are measured on.
	naiveSecret secret.ID = "bench/naive"
	database              = "demo"
)

// Settings are one run's knobs. Their relations are what makes (a) and (b) safe: see
// check.
type Settings struct {
	// Rotations of appSecret while (a) and (b) run, back to back.
	Rotations int
	// NaiveRotations of naiveSecret while (c) runs; 0 leaves (c) out.
	NaiveRotations int
	// Grace is both secrets' grace period.
	Grace time.Duration
	// QPS is each consumer's query rate.
	QPS int
	// TTL is the consumer cache's TTL (jitter ±10%); MaxStale its stale-on-error bound.
	TTL, MaxStale time.Duration
	// MaxConns, MaxConnLifetime, MaxConnLifetimeJitter and HealthCheckPeriod configure
	// each service's pgxpool.
	MaxConns                               int32
	MaxConnLifetime, MaxConnLifetimeJitter time.Duration
	HealthCheckPeriod                      time.Duration
	// Bouncer are PgBouncer's [pgbouncer] settings on top of pgtest's defaults
	// (auth_type scram-sha-256, auth_query, pool_mode transaction).
	Bouncer map[string]string
	// NaiveRevokeGate is YAML for the naive secret's revoke_gate field, e.g.
	// defaultNaiveGate; empty leaves the field out (the control: revoke after grace).
	NaiveRevokeGate string
	// NaiveRotationTimeout bounds each rotation of the naive secret without a holding
	// gate; a rotation still running then is reported and waited for once the naive
	// consumer stops.
	NaiveRotationTimeout time.Duration
	// NaiveHold is how long, with a holding gate, the naive consumer keeps querying after
	// Keyturn reports the revoke held, before it closes its session.
	NaiveHold time.Duration
}

// defaultNaiveGate is the naive secret's revoke_gate unless the run says otherwise: wait
// for the old login's sessions to end, hold the revoke after max_wait, check at the
// shortest interval Keyturn allows (inventory.MinGatePoll).
const defaultNaiveGate = "{wait: until_unused, max_wait: 5s, then: hold, poll: 5s}"

// defaultSettings: a grace period of a few seconds, and everything a consumer holds
// renewed well within it.
func defaultSettings() Settings {
	return Settings{
		Rotations:             100,
		Grace:                 3 * time.Second,
		QPS:                   200,
		TTL:                   500 * time.Millisecond,
		MaxStale:              2 * time.Second,
		MaxConns:              8,
		MaxConnLifetime:       time.Second,
		MaxConnLifetimeJitter: 250 * time.Millisecond,
		HealthCheckPeriod:     250 * time.Millisecond,
		Bouncer: map[string]string{
			"default_pool_size":   "8",
			"server_lifetime":     "1",
			"server_idle_timeout": "1",
		},
		NaiveRotationTimeout: time.Minute,
		NaiveRevokeGate:      defaultNaiveGate,
		NaiveHold:            10 * time.Second,
	}
}

// check refuses settings under which a consumer that does everything right could still
// hold an old credential at the revoke: the cache must notice the new version (TTL plus
// jitter), then every connection opened before that must have reached its lifetime
// (pgxpool destroys an expired connection at Acquire, so none is handed out older than
// MaxConnLifetime plus its jitter), with a margin for the query in flight.
func (s Settings) check(t testing.TB) {
	t.Helper()
	held := time.Duration(float64(s.TTL)*1.1) + s.MaxConnLifetime + s.MaxConnLifetimeJitter
	if held+500*time.Millisecond > s.Grace {
		t.Fatalf("settings: cache TTL+10%% (%s) + MaxConnLifetime (%s) + jitter (%s) + 0.5s margin must be under the grace period %s",
			s.TTL, s.MaxConnLifetime, s.MaxConnLifetimeJitter, s.Grace)
	}
	if s.MaxStale <= s.TTL || s.MaxStale >= s.Grace {
		t.Fatalf("settings: MaxStale %s must be over the TTL %s and under the grace period %s", s.MaxStale, s.TTL, s.Grace)
	}
}

// newEnv starts Temporal, the cluster and the worker with the run's secrets; the naive
// secret's entry gets the revoke_gate policy when one is set. With a gate, the admin role
// is granted pg_read_all_stats (without it PostgreSQL hides other roles' sessions and the
// gate cannot tell whether the old login is idle), the gate's notifications go to obs's
// webhook receiver, and the worker records Keyturn's metrics on obs's registry.
func newEnv(t testing.TB, s Settings) (*testenv.Env, *observers) {
	t.Helper()
	grace := s.Grace.String()
	app := demo.Secret{ID: appSecret, Target: demo.Target{Role: "app"}, Strategy: "alternating", Grace: grace, TerminateSessions: true}
	secrets := []demo.Secret{app}
	if s.NaiveRotations > 0 {
		// Each target's preparation hands the demo table to its group role, so "app" goes
		// last: the services read the table, the naive consumer only runs SELECT 1.
		naive := demo.Secret{ID: naiveSecret, Target: demo.Target{Role: "naive"}, Strategy: "alternating", Grace: grace, TerminateSessions: true,
			RevokeGate: s.NaiveRevokeGate}
		secrets = []demo.Secret{naive, app}
	}
	env := testenv.New(t, testenv.Options{Secrets: secrets, NoWorker: true})
	obs := newObservers(t)
	if s.NaiveRotations > 0 && s.NaiveRevokeGate != "" {
		grantReadAllStats(t, env)
		patchInventory(t, env, func(inv string) string { return inv + obs.notificationsBlock() })
	}
	env.StartWorkerOn(t, env.Client, obs.tel)
	return env, obs
}

// patchInventory rewrites the env's generated inventory and reloads it, before the worker
// starts. The loader rejects a field it does not know, so a policy this build cannot
// honour fails the run instead of being ignored.
func patchInventory(t testing.TB, env *testenv.Env, patch func(string) string) {
	t.Helper()
	raw, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.InventoryPath, []byte(patch(string(raw))), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(env.InventoryPath)
	if err != nil {
		t.Fatalf("patched inventory: %v", err)
	}
	env.Inventory = inv
}

// grantReadAllStats lets the run's admin role see every session's user and client in
// pg_stat_activity, as README's revoke gate section tells users to.
func grantReadAllStats(t testing.TB, env *testenv.Env) {
	t.Helper()
	sec := inventorySecret(t, env, naiveSecret)
	super := superConn(t, env.Cluster)
	if _, err := super.Exec(context.Background(), "GRANT pg_read_all_stats TO "+pgx.Identifier{sec.Postgres.Admin.Username}.Sanitize()); err != nil {
		t.Fatalf("grant pg_read_all_stats to the admin: %v", err)
	}
}

// inventorySecret is id's entry in the env's inventory.
func inventorySecret(t testing.TB, env *testenv.Env, id secret.ID) inventory.Secret {
	t.Helper()
	sec, ok := env.Inventory.Lookup(id)
	if !ok {
		t.Fatalf("the inventory has no secret %s", id)
	}
	return sec
}

// rotationLog records the rotations of one secret.
type rotationLog struct {
	mu        sync.Mutex
	outcomes  map[string]int
	durations []time.Duration
	// unfinished is a rotation still running after its timeout (a revoke the gate
	// holds), with when it started.
	unfinished      client.WorkflowRun
	unfinishedSince time.Time
	errors          []string
}

func (l *rotationLog) add(outcome string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outcomes == nil {
		l.outcomes = map[string]int{}
	}
	l.outcomes[outcome]++
	l.durations = append(l.durations, d)
	if err != nil && len(l.errors) < 5 {
		l.errors = append(l.errors, err.Error())
	}
}

// summary is "rotated=100" and the like, in a stable order.
func (l *rotationLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.outcomes))
	for k := range l.outcomes {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, l.outcomes[k]))
	}
	return strings.Join(parts, " ")
}

// count is the number of rotations that ended with outcome.
func (l *rotationLog) count(outcome string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outcomes[outcome]
}

// rotate runs one rotation of id through c, as `keyturn rotate --wait` does, waiting at
// most timeout. A rotation still running then is left running and returned.
func rotate(c client.Client, id secret.ID, timeout time.Duration, log *rotationLog) (running client.WorkflowRun) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	if err != nil {
		log.add("not started", 0, fmt.Errorf("start rotation of %s: %w", id, err))
		return nil
	}
	var res workflows.RotateResult
	err = run.Get(ctx, &res)
	if err != nil && ctx.Err() != nil {
		log.mu.Lock()
		log.unfinished, log.unfinishedSince = run, start
		log.mu.Unlock()
		return run
	}
	outcome := res.Outcome
	if outcome == "" {
		outcome = "error"
	}
	log.add(outcome, time.Since(start), err)
	return nil
}

// rotateBackToBack rotates id n times, one after the other, calling after(i) once
// rotation i has ended. It stops early at a rotation still running after timeout.
func rotateBackToBack(c client.Client, id secret.ID, n int, timeout time.Duration, log *rotationLog, after func(i int)) {
	for i := range n {
		if rotate(c, id, timeout, log) != nil {
			return
		}
		if after != nil {
			after(i)
		}
	}
}

// superConn connects to the run's database as the cluster's superuser, for checks that
// read the server's truth (pg_authid, pg_stat_activity).
func superConn(t testing.TB, c *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.Host, c.Port, c.SuperUser, database))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = c.SuperPassword.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// percentile is the p-th percentile of xs (nearest rank); zero for none.
func percentile(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
