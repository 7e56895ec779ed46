package consumerbench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/consumer/pgxconsumer"
	"github.com/keyturn/keyturn/secret"
)

// service is a consumer done right: a consumer.Cache over the store Keyturn writes, and a
// pgxconsumer.Pool whose connections take the cache's current login and live shorter
// than the grace period.
type service struct {
	name  string
	pool  *pgxconsumer.Pool
	stats *queryStats
}

// startService opens a service's cache and pool against host:port (the cluster, or
// PgBouncer when bouncer is set) and closes both when the test ends.
func startService(t testing.TB, name, storeDir, host string, port int, bouncer bool, s Settings) *service {
	t.Helper()
	src, err := consumer.OpenFile(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	stats := newQueryStats()
	cache, err := consumer.New(src, consumer.Options{
		TTL:      s.TTL,
		MaxStale: s.MaxStale,
		OnStale:  func(secret.ID, time.Duration, error) { stats.stale.Add(1) },
		OnError:  func(secret.ID, error) { stats.storeErrors.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	hook := pgxconsumer.New(cache, appSecret, pgxconsumer.Options{
		OnRetry: func(secret.ID, error) { stats.retries.Add(1) },
	})
	// No user and no password here: both come from the secret's current version.
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s sslmode=disable application_name=%s", host, port, database, name))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = s.MaxConns
	cfg.MaxConnLifetime = s.MaxConnLifetime
	cfg.MaxConnLifetimeJitter = s.MaxConnLifetimeJitter
	cfg.HealthCheckPeriod = s.HealthCheckPeriod
	if bouncer {
		// Transaction pooling hands each transaction to any server connection, so named
		// prepared statements (pgx's default statement cache) cannot be used: PgBouncer
		// 1.18 does not track them.
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxconsumer.NewPool(ctx, cfg, hook)
	if err != nil {
		t.Fatalf("%s: new pool: %v", name, err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("%s: first query: %v", name, err)
	}
	return &service{name: name, pool: pool, stats: stats}
}

// query is what each service runs: a read of the application's table, which the twins
// reach through the group role.
const query = `SELECT count(*) FROM orders`

// run issues qps queries a second, each on its own goroutine (an open loop: a slow query
// does not slow the rate), until ctx ends; it returns once every query has finished.
func (s *service) run(ctx context.Context, qps int) {
	interval := time.Second / time.Duration(qps)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; ; i++ {
		next := start.Add(time.Duration(i) * interval)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(next)):
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			began := time.Now()
			var n int64
			err := s.pool.QueryRow(qctx, query).Scan(&n)
			s.stats.record(time.Since(began), err)
		}()
	}
}

// queryStats counts one consumer's queries.
type queryStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	failed    int
	// firstErrors are the first distinct failures, for the report (pgx errors name the
	// user and the server's message, never the password).
	firstErrors map[string]int

	retries     atomic.Int64 // connects refused with 28P01 and retried after a fresh read
	stale       atomic.Int64 // stale values served during a store error
	storeErrors atomic.Int64 // failed reads of the store
}

func newQueryStats() *queryStats { return &queryStats{firstErrors: map[string]int{}} }

func (q *queryStats) record(d time.Duration, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		q.failed++
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if _, ok := q.firstErrors[msg]; ok || len(q.firstErrors) < 5 {
			q.firstErrors[msg]++
		}
		return
	}
	q.latencies = append(q.latencies, d)
}

// counts returns queries run and failed.
func (q *queryStats) counts() (run, failed int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.latencies) + q.failed, q.failed
}

// latency returns the p50, p99 and max of successful queries.
func (q *queryStats) latency() (p50, p99, maxD time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return percentile(q.latencies, 50), percentile(q.latencies, 99), percentile(q.latencies, 100)
}

// errorsSeen lists the first distinct failures with their counts.
func (q *queryStats) errorsSeen() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for msg, n := range q.firstErrors {
		out = append(out, fmt.Sprintf("%dx %s", n, msg))
	}
	return out
}
