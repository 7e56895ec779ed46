package consumerbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// The benchmark's knobs, read from the environment (`make bench-consumers` sets them).
const (
	envRotations      = "KEYTURN_BENCH_CONSUMERS_ROTATIONS"
	envNaiveRotations = "KEYTURN_BENCH_CONSUMERS_NAIVE_ROTATIONS"
	// envNaiveRevokeGate is YAML for the naive secret's revoke_gate field, e.g.
	// "{wait: until_unused, max: 20s, then: hold}"; empty: no gate.
	envNaiveRevokeGate = "KEYTURN_BENCH_CONSUMERS_NAIVE_REVOKE_GATE"
)

// abResult is what (a) and (b) measured over one series of rotations.
type abResult struct {
	rotations      *rotationLog
	direct, pooled *service
	bouncer        *pgtest.Bouncer
	elapsed        time.Duration
}

// runAB runs (a) and (b) side by side on appSecret: one rotation to give it a current
// version, then both services at s.QPS each while s.Rotations rotations run back to back,
// and one grace period more after the last revoke.
func runAB(t testing.TB, env *testenv.Env, s Settings) abResult {
	t.Helper()
	first := &rotationLog{}
	if rotate(env.Client, appSecret, 2*time.Minute, first); first.count("rotated") != 1 {
		t.Fatalf("first rotation of %s: %s %v", appSecret, first.summary(), first.errors)
	}
	bouncer := pgtest.PgBouncerForTest(t, env.Cluster, pgtest.BouncerOptions{Databases: []string{database}, Settings: s.Bouncer})
	res := abResult{
		rotations: &rotationLog{},
		direct:    startService(t, "service-direct", env.StoreDir, env.Cluster.Host, env.Cluster.Port, false, s),
		pooled:    startService(t, "service-pgbouncer", env.StoreDir, bouncer.Host, bouncer.Port, true, s),
		bouncer:   bouncer,
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, svc := range []*service{res.direct, res.pooled} {
		wg.Add(1)
		go func() { defer wg.Done(); svc.run(ctx, s.QPS) }()
	}
	start := time.Now()
	rotateBackToBack(env.Client, appSecret, s.Rotations, 2*time.Minute, res.rotations, nil)
	time.Sleep(s.Grace)
	stop()
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// TestConsumersSurviveRotations is the short version of the benchmark, run in CI: a
// handful of real rotations with a 3s grace period and terminate_sessions on, while a
// service using the consumer library and pgxpool queries PostgreSQL directly and another
// goes through PgBouncer in transaction pooling. Neither may see a failed query, and the
// server must show the old logins revoked.
func TestConsumersSurviveRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, PostgreSQL and PgBouncer")
	}
	s := defaultSettings()
	s.Rotations = 4
	s.check(t)
	env, _ := newEnv(t, s)
	res := runAB(t, env, s)
	report(io.Discard, s, res, nil, nil) // the report's code runs in CI too
	t.Logf("rotations: %s; elapsed %s", res.rotations.summary(), res.elapsed.Round(time.Millisecond))

	if got := res.rotations.count("rotated"); got != s.Rotations {
		t.Fatalf("rotations: %s, want rotated=%d (%v)", res.rotations.summary(), s.Rotations, res.rotations.errors)
	}
	// At 200 queries a second over the run, each service must have run most of them: a
	// stalled load generator would pass with 0 failures and prove nothing.
	want := int(res.elapsed.Seconds() * float64(s.QPS) * 0.5)
	for _, svc := range []*service{res.direct, res.pooled} {
		run, failed := svc.stats.counts()
		p50, p99, _ := svc.stats.latency()
		t.Logf("%s: %d queries, %d failed, p50 %sms p99 %sms, %d refused logins retried", svc.name, run, failed, ms(p50), ms(p99), svc.stats.retries.Load())
		if failed != 0 {
			t.Errorf("%s: %d of %d queries failed across %d rotations: %v", svc.name, failed, run, s.Rotations, svc.stats.errorsSeen())
		}
		if run < want {
			t.Errorf("%s ran %d queries in %s, want at least %d", svc.name, run, res.elapsed.Round(time.Second), want)
		}
	}
	// The rotations really cut the old logins off: one twin may log in, the other was
	// revoked (NOLOGIN, no password), so a consumer that had not moved would have failed.
	super := superConn(t, env.Cluster)
	var canLogin, revoked int
	if err := super.QueryRow(t.Context(),
		`SELECT count(*) FILTER (WHERE rolcanlogin), count(*) FILTER (WHERE NOT rolcanlogin AND rolpassword IS NULL)
		 FROM pg_authid WHERE rolname IN ('app_a', 'app_b')`).Scan(&canLogin, &revoked); err != nil {
		t.Fatal(err)
	}
	if canLogin != 1 || revoked != 1 {
		t.Errorf("twins after the rotations: %d may log in, %d revoked; want 1 and 1", canLogin, revoked)
	}
}

// BenchmarkConsumers is `make bench-consumers`: (a) and (b) across 100 back-to-back
// rotations (KEYTURN_BENCH_CONSUMERS_ROTATIONS), then (c) across a few rotations of its own
// secret (KEYTURN_BENCH_CONSUMERS_NAIVE_ROTATIONS) under the naive secret's revoke_gate
// policy from KEYTURN_BENCH_CONSUMERS_NAIVE_REVOKE_GATE (empty: defaultNaiveGate, which
// holds; "none": no gate, the control that shows the breakage). It runs once whatever
// b.N is and prints a table. A rotation of (a) and (b)'s secret that does not end
// "rotated", or a failed query of (a) or (b), fails it; so does, under a holding gate, a
// revoke of (c) not held, a failed query of (c), or a revoke that does not go ahead once
// (c) has closed its session. Without a holding gate (c)'s figures are reported only.
func BenchmarkConsumers(b *testing.B) {
	s := defaultSettings()
	s.Rotations = envInt(b, envRotations, s.Rotations)
	s.NaiveRotations = envInt(b, envNaiveRotations, 3)
	switch v := strings.TrimSpace(os.Getenv(envNaiveRevokeGate)); v {
	case "":
	case "none":
		s.NaiveRevokeGate = ""
	default:
		s.NaiveRevokeGate = v
	}
	s.check(b)
	env, obs := newEnv(b, s)
	b.ResetTimer()
	ab := runAB(b, env, s)
	var naive *naiveResult
	var gated *gatedResult
	switch {
	case s.NaiveRotations == 0:
	case inventorySecret(b, env, naiveSecret).RevokeGate.Holds():
		r := runNaiveGated(b, env, obs, s)
		gated = &r
	default:
		r := runNaive(b, env, s)
		naive = &r
	}
	b.StopTimer()
	report(os.Stdout, s, ab, naive, gated)
	if got := ab.rotations.count("rotated"); got != s.Rotations {
		b.Fatalf("rotations of %s: %s, want rotated=%d (%v)", appSecret, ab.rotations.summary(), s.Rotations, ab.rotations.errors)
	}
	// (a) and (b) are the library's promise: a failed query there is a failed run.
	for _, svc := range []*service{ab.direct, ab.pooled} {
		if _, failed := svc.stats.counts(); failed != 0 {
			b.Errorf("%s: %d queries failed", svc.name, failed)
		}
	}
	// (c) under a holding gate is the gate's promise.
	if gated != nil {
		for _, p := range gated.problems(s.NaiveRotations) {
			b.Error(p)
		}
	}
	for range b.N {
		// One run is the measurement; b.N only satisfies the benchmark loop.
	}
}

// report prints the run's table.
func report(w io.Writer, s Settings, ab abResult, naive *naiveResult, gated *gatedResult) {
	fmt.Fprintf(w, "\nConsumer safety across real rotations (PostgreSQL with scram-sha-256; alternating strategy; terminate_sessions on)\n")
	fmt.Fprintf(w, "rotations of %s: %d back to back, grace %s; outcomes %s; rotation p50 %.2fs p99 %.2fs; load ran %.1fs\n",
		appSecret, s.Rotations, s.Grace, ab.rotations.summary(),
		percentile(ab.rotations.durations, 50).Seconds(), percentile(ab.rotations.durations, 99).Seconds(), ab.elapsed.Seconds())
	fmt.Fprintf(w, "consumer library: consumer.Cache TTL %s (±10%% jitter), MaxStale %s; pgxconsumer.Pool\n", s.TTL, s.MaxStale)
	fmt.Fprintf(w, "pgxpool: MaxConns %d, MaxConnLifetime %s + jitter %s, HealthCheckPeriod %s; %d queries/s per service\n",
		s.MaxConns, s.MaxConnLifetime, s.MaxConnLifetimeJitter, s.HealthCheckPeriod, s.QPS)
	fmt.Fprintf(w, "pgbouncer: %s\n\n", bouncerSummary(ab.bouncer))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "consumer\tqueries\tfailed\t28P01 retried\tp50 ms\tp99 ms\tmax ms\t")
	for _, row := range []struct {
		label string
		svc   *service
	}{{"(a) library + pgxpool, direct", ab.direct}, {"(b) library + pgxpool via PgBouncer (transaction)", ab.pooled}} {
		run, failed := row.svc.stats.counts()
		p50, p99, mx := row.svc.stats.latency()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", row.label, run, failed, row.svc.stats.retries.Load(), ms(p50), ms(p99), ms(mx))
	}
	tw.Flush()
	for _, svc := range []*service{ab.direct, ab.pooled} {
		for _, e := range svc.stats.errorsSeen() {
			fmt.Fprintf(w, "  %s failure: %s\n", svc.name, e)
		}
	}
	if gated != nil {
		reportGated(w, s, *gated)
	}
	if naive == nil {
		return
	}
	gate := s.NaiveRevokeGate
	if gate == "" {
		gate = "none (revoke after grace)"
	}
	fmt.Fprintf(w, "\n(c) naive consumer: reads %s once at start, one session, reconnects with the same password (every %s); revoke_gate: %s\n",
		naiveSecret, reconnectEvery, gate)
	fmt.Fprintf(w, "rotations of %s: %d started, outcomes %s\n", naiveSecret, s.NaiveRotations, naive.rotations.summary())
	run, failed := naive.stats.counts()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "consumer\tqueries\tfailed\treconnects\trefused\trevokes held\tfirst failure after rotation start\t")
	first := "-"
	if naive.firstFailAfter > 0 {
		first = fmt.Sprintf("%.2fs", naive.firstFailAfter.Seconds())
	}
	fmt.Fprintf(tw, "(c) naive, password read once\t%d\t%d\t%d\t%d\t%d\t%s\t\n", run, failed, naive.reconnects, naive.refused, naive.revokesHeld(), first)
	tw.Flush()
	var states []string
	for i, st := range naive.states {
		session := "session open"
		if !naive.sessionAlive[i] {
			session = "session gone"
		}
		states = append(states, fmt.Sprintf("#%d %s, %s", i+1, st, session))
	}
	fmt.Fprintf(w, "naive login %s after each rotation (server's view): %s\n", naive.user, strings.Join(states, "; "))
	if naive.unfinished != "" {
		fmt.Fprintf(w, "rotation held past %s: %s\n", s.Grace+s.NaiveRotationTimeout, naive.unfinished)
	}
	for _, e := range naive.stats.errorsSeen() {
		fmt.Fprintf(w, "  naive failure: %s\n", e)
	}
}

// bouncerSummary lists the PgBouncer settings that matter for rotation.
func bouncerSummary(b *pgtest.Bouncer) string {
	var parts []string
	for _, line := range strings.Split(b.Config, "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		switch k {
		case "pool_mode", "auth_type", "auth_user", "auth_query", "server_lifetime", "server_idle_timeout", "default_pool_size":
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a whole number of 0 or more", name, v)
	}
	return n
}
