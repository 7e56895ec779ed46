package consumerbench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/consumer/pgxconsumer"
	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// naiveConsumer is the consumer rotation breaks: it reads the login once at start, keeps
// one session, and when that session dies reconnects with the login it read, at most
// every reconnectEvery.
type naiveConsumer struct {
	user     string
	password secret.Sensitive
	cluster  *pgtest.Cluster
	stats    *queryStats

	conn       *pgx.Conn
	pid        uint32 // the first session's backend, for the server's view of it
	lastTry    time.Time
	reconnects int // attempts after the first session died
	refused    int // attempts the server refused
	firstFail  time.Time
}

// reconnectEvery paces the naive consumer's reconnects, as a client library's backoff
// would; queries in between fail.
const reconnectEvery = 250 * time.Millisecond

// naiveApplication is the naive consumer's application_name, as a revoke gate holding
// for it would name it.
const naiveApplication = "naive-consumer"

// startNaive reads the naive secret's current login once and opens the session.
func startNaive(t testing.TB, storeDir string, c *pgtest.Cluster) *naiveConsumer {
	t.Helper()
	src, err := consumer.OpenFile(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := src.Current(ctx, naiveSecret)
	if err != nil {
		t.Fatal(err)
	}
	n := &naiveConsumer{user: v.Version.Metadata[pgxconsumer.MetadataUsername], password: v.Field(pgxconsumer.FieldPassword), cluster: c, stats: newQueryStats()}
	if n.user == "" {
		t.Fatalf("version %d of %s names no user", v.Version.Number, naiveSecret)
	}
	if err := n.connect(ctx); err != nil {
		t.Fatalf("naive consumer's first session: %v", err)
	}
	n.pid = n.conn.PgConn().PID()
	t.Cleanup(n.close)
	return n
}

func (n *naiveConsumer) connect(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable application_name=%s", n.cluster.Host, n.cluster.Port, n.user, database, naiveApplication))
	if err != nil {
		return err
	}
	cfg.Password = n.password.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	n.conn = conn
	return nil
}

// run issues qps queries a second on its one session until ctx ends.
func (n *naiveConsumer) run(ctx context.Context, qps int) {
	interval := time.Second / time.Duration(qps)
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(i) * interval))):
		}
		n.queryOnce()
	}
}

var errNoSession = errors.New("no session: the reconnect with the password read at start was refused")

func (n *naiveConsumer) queryOnce() {
	qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n.conn == nil {
		if time.Since(n.lastTry) < reconnectEvery {
			n.fail(0, errNoSession)
			return
		}
		n.lastTry = time.Now()
		n.reconnects++
		if err := n.connect(qctx); err != nil {
			n.refused++
			n.fail(0, fmt.Errorf("reconnect: %w", err))
			return
		}
	}
	began := time.Now()
	var one int
	err := n.conn.QueryRow(qctx, `SELECT 1`).Scan(&one)
	if err != nil {
		n.conn.Close(context.Background())
		n.conn = nil
		n.lastTry = time.Time{}
	}
	n.fail(time.Since(began), err)
}

// fail records a query (err nil: it succeeded) and the time of the first failure.
func (n *naiveConsumer) fail(d time.Duration, err error) {
	if err != nil && n.firstFail.IsZero() {
		n.firstFail = time.Now()
	}
	n.stats.record(d, err)
}

func (n *naiveConsumer) close() {
	if n.conn != nil {
		n.conn.Close(context.Background())
		n.conn = nil
	}
}

// credentialState reads from the server whether the naive consumer's login still works:
// "works" (LOGIN, the password it read), "revoked" (NOLOGIN or no password) or "re-keyed"
// (a later rotation gave the role a new password).
func credentialState(ctx context.Context, super *pgx.Conn, user, verifierAtStart string) (string, error) {
	var canLogin bool
	var verifier *string
	if err := super.QueryRow(ctx, `SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1`, user).Scan(&canLogin, &verifier); err != nil {
		return "", fmt.Errorf("read role %s: %w", user, err)
	}
	switch {
	case !canLogin || verifier == nil:
		return "revoked", nil
	case *verifier != verifierAtStart:
		return "re-keyed", nil
	default:
		return "works", nil
	}
}

// verifierOf reads a role's stored SCRAM verifier (never printed).
func verifierOf(ctx context.Context, super *pgx.Conn, user string) (string, error) {
	var v string
	err := super.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, user).Scan(&v)
	return v, err
}

// naiveResult is what (c) measured.
type naiveResult struct {
	rotations *rotationLog
	stats     *queryStats
	user      string
	// states[i] is the naive login's state after rotation i, and whether its first
	// session was still open then.
	states       []string
	sessionAlive []bool
	reconnects   int
	refused      int
	// firstFailAfter is how long after the start of the rotation that cut it off the
	// first query failed; zero when none failed.
	firstFailAfter time.Duration
	// unfinished says what became of a rotation still running when the naive consumer
	// stopped (a revoke held for it): its outcome and how long after the session closed.
	unfinished string
}

// revokesHeld counts rotations after which the naive consumer's login still worked and
// its session was open although a newer version was current: revokes held for it.
func (r naiveResult) revokesHeld() int {
	n := 0
	for i, s := range r.states {
		if s == "works" && r.sessionAlive[i] {
			n++
		}
	}
	return n
}

// runNaive runs (c): one rotation to give the naive secret a current version, then the
// naive consumer at s.QPS while s.NaiveRotations rotations run, checking the server after
// each. A rotation still running after s.NaiveRotationTimeout (held by a revoke gate)
// ends the series; it is waited for once the naive consumer has closed its session.
func runNaive(t testing.TB, env *testenv.Env, s Settings) naiveResult {
	t.Helper()
	first := &rotationLog{}
	if rotate(env.Client, naiveSecret, 2*time.Minute, first); first.count("rotated") != 1 {
		t.Fatalf("first rotation of %s: %s %v", naiveSecret, first.summary(), first.errors)
	}
	super := superConn(t, env.Cluster)
	n := startNaive(t, env.StoreDir, env.Cluster)
	ctx := context.Background()
	verifier, err := verifierOf(ctx, super, n.user)
	if err != nil {
		t.Fatal(err)
	}
	res := naiveResult{rotations: &rotationLog{}, stats: n.stats, user: n.user}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.run(runCtx, s.QPS) }()

	var starts []time.Time
	for range s.NaiveRotations {
		starts = append(starts, time.Now())
		if rotate(env.Client, naiveSecret, s.Grace+s.NaiveRotationTimeout, res.rotations) != nil {
			break
		}
		state, err := credentialState(ctx, super, n.user, verifier)
		if err != nil {
			t.Fatal(err)
		}
		res.states = append(res.states, state)
		// The server says whether the first session lives: the consumer itself notices
		// only at its next query.
		var alive bool
		if err := super.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, n.pid).Scan(&alive); err != nil {
			t.Fatal(err)
		}
		res.sessionAlive = append(res.sessionAlive, alive)
	}
	time.Sleep(time.Second) // a last second of queries after the final revoke
	stop()
	<-done
	res.reconnects, res.refused = n.reconnects, n.refused
	// The first failure is timed from the start of the rotation it happened in.
	for i := len(starts) - 1; i >= 0 && !n.firstFail.IsZero(); i-- {
		if !starts[i].After(n.firstFail) {
			res.firstFailAfter = n.firstFail.Sub(starts[i])
			break
		}
	}
	n.close()
	closed := time.Now()

	if run := res.rotations.unfinished; run != nil {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var out workflows.RotateResult
		if err := run.Get(wctx, &out); err != nil {
			res.unfinished = fmt.Sprintf("still not finished 2m after the naive session closed: %v", err)
		} else {
			res.unfinished = fmt.Sprintf("ended %q %.1fs after the naive session closed (it had run %.1fs)",
				out.Outcome, time.Since(closed).Seconds(), closed.Sub(res.rotations.unfinishedSince).Seconds())
		}
	}
	return res
}
