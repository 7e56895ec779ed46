package consumerbench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// observers are Keyturn's own outputs the run counts held revokes in, besides the
// rotation's status: the worker's metrics (keyturn_revoke_gate_waits_total) and the
// gate's webhook notifications (revoke_held, revoke_released).
type observers struct {
	tel      *telemetry.Telemetry
	registry *prometheus.Registry
	hook     *webhook
}

// Environment variables the notification route's references point at: the worker is in
// this process, so it resolves them from here.
const (
	envNotifyURL = "KEYTURN_BENCH_NOTIFY_URL"
	envNotifyKey = "KEYTURN_BENCH_NOTIFY_KEY"
)

func newObservers(t testing.TB) *observers {
	t.Helper()
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	hook := &webhook{key: []byte("consumerbench-webhook-signing-key-0123")}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	t.Setenv(envNotifyURL, srv.URL)
	t.Setenv(envNotifyKey, string(hook.key))
	return &observers{tel: tel, registry: reg, hook: hook}
}

// notificationsBlock routes the revoke gate's events to the receiver.
func (o *observers) notificationsBlock() string {
	return "notifications:\n  routes:\n    - name: consumerbench\n      url: env:" + envNotifyURL + "\n      format: json\n" +
		"      signing_key: env:" + envNotifyKey + "\n      events: [revoke_held, revoke_released]\n"
}

// gateWaits sums keyturn_revoke_gate_waits_total by "outcome=...,held=..." as the
// worker's registry holds it now.
func (o *observers) gateWaits(t testing.TB) map[string]float64 {
	t.Helper()
	families, err := o.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != telemetry.MetricRevokeGateWaits+"_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var outcome, held string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "outcome":
					outcome = l.GetValue()
				case "held":
					held = l.GetValue()
				}
			}
			out["outcome="+outcome+",held="+held] += m.GetCounter().GetValue()
		}
	}
	return out
}

// webhook receives Keyturn's notifications as a user's receiver would: it checks each
// delivery's signature and counts the events by type.
type webhook struct {
	key      []byte
	mu       sync.Mutex
	events   map[notify.Type]int
	rejected int
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	var e notify.Event
	if notify.Verify(h.key, r.Header.Get(notify.HeaderSignature), body, time.Now(), 0) != nil || json.Unmarshal(body, &e) != nil || e.SecretID != naiveSecret {
		h.rejected++
		http.Error(w, "rejected", http.StatusBadRequest)
		return
	}
	if h.events == nil {
		h.events = map[notify.Type]int{}
	}
	h.events[e.Type]++
}

func (h *webhook) count(typ notify.Type) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.events[typ]
}

// heldRevoke is one cycle of (c) under a holding gate: a naive consumer that read the
// current password once, a rotation the gate holds for it, then the consumer closing its
// session and the revoke going ahead.
type heldRevoke struct {
	// user is the login the consumer read (the twins alternate from cycle to cycle).
	user string
	// held: Keyturn's status said revoke_held; toHeld is from the rotation's start.
	held   bool
	toHeld time.Duration
	// uses is how the gate named the uses it held for (user, application, client).
	uses string
	// serverHeld is the login's state on the server while held ("works"), and whether the
	// naive consumer's session was still open then.
	serverHeld  string
	sessionHeld bool
	// heldRun and heldFailed are the naive consumer's queries between the hold and the
	// session's close; run and failed over the whole cycle.
	heldRun, heldFailed, run, failed int
	// After the close: the rotation's outcome and the gate's end state, how long until
	// the server showed the login revoked and until the rotation ended.
	outcome, gateState string
	toRevoked, toEnded time.Duration
	serverAfter        string
	problem            string
	errorsSeen         []string
}

// gatedResult is (c) measured under a holding gate.
type gatedResult struct {
	cycles              []heldRevoke
	gateWaits           map[string]float64
	notifiedHeld        int
	notifiedReleased    int
	notificationsFailed int
}

// revokesHeld counts cycles whose revoke Keyturn held while the server showed the old
// login working with the naive session open.
func (r gatedResult) revokesHeld() int {
	n := 0
	for _, c := range r.cycles {
		if c.held && c.serverHeld == "works" && c.sessionHeld {
			n++
		}
	}
	return n
}

// released counts cycles whose revoke went ahead once the session closed: the rotation
// ended rotated, the gate idle, and the server shows the login revoked.
func (r gatedResult) released() int {
	n := 0
	for _, c := range r.cycles {
		if c.outcome == workflows.OutcomeRotated && c.gateState == workflows.GateIdle && c.serverAfter == "revoked" {
			n++
		}
	}
	return n
}

func (r gatedResult) queries() (run, failed, heldRun, heldFailed int) {
	for _, c := range r.cycles {
		run, failed, heldRun, heldFailed = run+c.run, failed+c.failed, heldRun+c.heldRun, heldFailed+c.heldFailed
	}
	return
}

// runNaiveGated runs (c) under a holding gate, s.NaiveRotations times: a naive consumer
// reads the current password once and keeps querying on one session while the secret
// rotates; the rotation must reach revoke_held (Keyturn's status) with the server showing
// the old login working and the session open; the consumer goes on for s.NaiveHold, then
// closes its session, and the revoke must go ahead.
func runNaiveGated(t testing.TB, env *testenv.Env, obs *observers, s Settings) gatedResult {
	t.Helper()
	first := &rotationLog{}
	if rotate(env.Client, naiveSecret, 2*time.Minute, first); first.count("rotated") != 1 {
		t.Fatalf("first rotation of %s: %s %v", naiveSecret, first.summary(), first.errors)
	}
	gate := inventorySecret(t, env, naiveSecret).RevokeGate
	if !gate.Holds() {
		t.Fatalf("runNaiveGated needs a holding gate, %s has %s", naiveSecret, gate)
	}
	// The hold comes after the grace period and max_wait, at the next check; a minute
	// more for a busy machine.
	toHeld := s.Grace + gate.MaxWait + gate.Poll + time.Minute
	super := superConn(t, env.Cluster)
	var res gatedResult
	for range s.NaiveRotations {
		c := heldCycle(t, env, super, s, toHeld, gate.Poll)
		res.cycles = append(res.cycles, c)
		if c.problem != "" {
			break // a rotation still running would refuse the next one
		}
	}
	// Metrics are recorded as the rotation's result is, notifications by an activity
	// before it: both are in by the time the rotation has ended.
	res.gateWaits = obs.gateWaits(t)
	res.notifiedHeld, res.notifiedReleased = obs.hook.count(notify.RevokeHeld), obs.hook.count(notify.RevokeReleased)
	obs.hook.mu.Lock()
	res.notificationsFailed = obs.hook.rejected
	obs.hook.mu.Unlock()
	return res
}

// heldCycle is one cycle of runNaiveGated; its problem says what went wrong, if anything.
func heldCycle(t testing.TB, env *testenv.Env, super *pgx.Conn, s Settings, toHeld, poll time.Duration) (c heldRevoke) {
	t.Helper()
	ctx := context.Background()
	n := startNaive(t, env.StoreDir, env.Cluster)
	c.user = n.user
	verifier, err := verifierOf(ctx, super, n.user)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.run(runCtx, s.QPS) }()
	defer func() {
		stop()
		<-done
		n.close()
		c.run, c.failed = n.stats.counts()
		c.errorsSeen = n.stats.errorsSeen()
	}()

	// Step 1. Rotate, and wait for Keyturn to say the revoke is held.
	started := time.Now()
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(naiveSecret, "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: naiveSecret})
	if err != nil {
		c.problem = fmt.Sprintf("start rotation: %v", err)
		return c
	}
	var status workflows.RotateStatus
	for deadline := started.Add(toHeld); ; time.Sleep(200 * time.Millisecond) {
		if v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus); err == nil && v.Get(&status) == nil && status.Outcome == workflows.OutcomeRevokeHeld {
			break
		}
		if time.Now().After(deadline) {
			c.problem = fmt.Sprintf("not held %s after the rotation began (outcome %q, step %q)", toHeld, status.Outcome, status.Step)
			return c
		}
	}
	c.held, c.toHeld = true, time.Since(started)
	if g := status.RevokeGate; g != nil {
		c.uses = workflows.DescribeUses(g.Uses, 1)
	}
	heldRun, heldFailed := n.stats.counts()

	// Step 2. The server's view while held: the old login works and the session is open.
	if c.serverHeld, err = credentialState(ctx, super, n.user, verifier); err != nil {
		t.Fatal(err)
	}
	if err := super.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, n.pid).Scan(&c.sessionHeld); err != nil {
		t.Fatal(err)
	}

	// Step 3. The naive consumer goes on querying while the revoke stays held.
	time.Sleep(s.NaiveHold)
	if v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus); err != nil || v.Get(&status) != nil || status.Outcome != workflows.OutcomeRevokeHeld {
		c.problem = fmt.Sprintf("no longer held after %s with the session open (outcome %q, %v)", s.NaiveHold, status.Outcome, err)
		return c
	}
	stop()
	<-done
	endRun, endFailed := n.stats.counts()
	c.heldRun, c.heldFailed = endRun-heldRun, endFailed-heldFailed

	// Step 4. The consumer closes its session; the gate's next check finds the login idle
	// and the revoke goes ahead.
	n.close()
	closed := time.Now()
	for deadline := closed.Add(poll + time.Minute); ; time.Sleep(100 * time.Millisecond) {
		state, err := credentialState(ctx, super, n.user, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if state == "revoked" {
			c.toRevoked = time.Since(closed)
			break
		}
		if time.Now().After(deadline) {
			c.problem = fmt.Sprintf("the login was not revoked %s after the session closed (%s)", poll+time.Minute, state)
			return c
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out workflows.RotateResult
	if err := run.Get(wctx, &out); err != nil {
		c.problem = fmt.Sprintf("rotation after the session closed: %v", err)
		return c
	}
	c.toEnded = time.Since(closed)
	c.outcome = out.Outcome
	if out.RevokeGate != nil {
		c.gateState = out.RevokeGate.State
	}
	if c.serverAfter, err = credentialState(ctx, super, n.user, verifier); err != nil {
		t.Fatal(err)
	}
	return c
}

// problems lists what broke the gate's promise over want cycles: each revoke held with
// the old login working and the session open, not one failed query, each revoke going
// ahead once the session closed, and Keyturn's metric and notifications counting them.
func (r gatedResult) problems(want int) []string {
	var out []string
	for i, c := range r.cycles {
		if c.problem != "" {
			out = append(out, fmt.Sprintf("(c) cycle %d: %s", i+1, c.problem))
		}
	}
	if len(r.cycles) != want {
		out = append(out, fmt.Sprintf("(c) ran %d of %d cycles", len(r.cycles), want))
	}
	run, failed, heldRun, _ := r.queries()
	if failed != 0 {
		out = append(out, fmt.Sprintf("(c) %d of %d queries failed under a holding gate", failed, run))
	}
	if heldRun == 0 {
		out = append(out, "(c) ran no query while its revoke was held: nothing was proven")
	}
	if got := r.revokesHeld(); got != want {
		out = append(out, fmt.Sprintf("(c) %d of %d revokes held with the old login working and the session open", got, want))
	}
	if got := r.released(); got != want {
		out = append(out, fmt.Sprintf("(c) %d of %d revokes went ahead (rotated, gate idle, login revoked) once the session closed", got, want))
	}
	if got := r.gateWaits["outcome="+workflows.GateIdle+",held=true"]; int(got) != want {
		out = append(out, fmt.Sprintf("(c) keyturn_revoke_gate_waits_total{outcome=idle,held=true} is %v, want %d (%v)", got, want, r.gateWaits))
	}
	if r.notifiedHeld != want || r.notifiedReleased != want || r.notificationsFailed != 0 {
		out = append(out, fmt.Sprintf("(c) notifications: revoke_held %d, revoke_released %d, rejected %d; want %d, %d, 0",
			r.notifiedHeld, r.notifiedReleased, r.notificationsFailed, want, want))
	}
	return out
}

// reportGated prints (c)'s part of the table under a holding gate.
func reportGated(w io.Writer, s Settings, r gatedResult) {
	fmt.Fprintf(w, "\n(c) naive consumer: reads %s once at start, one session, SELECT 1 at %d/s, reconnects with the same password; revoke_gate: %s (admin granted pg_read_all_stats); %s of queries after the hold, then the session closes\n",
		naiveSecret, s.QPS, s.NaiveRevokeGate, s.NaiveHold)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rotation\tlogin\theld after\tserver while held\tqueries while held\tfailed\tqueries\tfailed\trevoked after close\tended after close\toutcome, gate\t")
	for i, c := range r.cycles {
		session := "session gone"
		if c.sessionHeld {
			session = "session open"
		}
		server := "-"
		if c.held {
			server = c.serverHeld + ", " + session
		}
		fmt.Fprintf(tw, "#%d\t%s\t%.1fs\t%s\t%d\t%d\t%d\t%d\t%.1fs\t%.1fs\t%s, %s\t\n", i+1, c.user, c.toHeld.Seconds(), server,
			c.heldRun, c.heldFailed, c.run, c.failed, c.toRevoked.Seconds(), c.toEnded.Seconds(), cmp.Or(c.outcome, "-"), cmp.Or(c.gateState, "-"))
	}
	tw.Flush()
	run, failed, heldRun, heldFailed := r.queries()
	fmt.Fprintf(w, "revokes held: %d of %d (Keyturn: status revoke_held; server: old login works, session open); went ahead after the close: %d; queries %d, failed %d (while held: %d, failed %d)\n",
		r.revokesHeld(), len(r.cycles), r.released(), run, failed, heldRun, heldFailed)
	fmt.Fprintf(w, "keyturn_revoke_gate_waits_total: %s; notifications received: revoke_held %d, revoke_released %d (rejected %d)\n",
		gateWaitsSummary(r.gateWaits), r.notifiedHeld, r.notifiedReleased, r.notificationsFailed)
	for i, c := range r.cycles {
		if c.uses != "" {
			fmt.Fprintf(w, "  #%d held for: %s\n", i+1, c.uses)
		}
		if c.problem != "" {
			fmt.Fprintf(w, "  #%d problem: %s\n", i+1, c.problem)
		}
		for _, e := range c.errorsSeen {
			fmt.Fprintf(w, "  #%d naive failure: %s\n", i+1, e)
		}
	}
}

func gateWaitsSummary(m map[string]float64) string {
	if len(m) == 0 {
		return "none recorded"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("{%s} %v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// TestNaiveConsumerHeldByGate is (c) under a holding gate, the short version CI runs: a
// consumer that read the password once keeps one session and queries at 200/s while its
// secret rotates with terminate_sessions on. The gate must hold the revoke (Keyturn's
// status, metric and notification; on the server the old login still works and the
// session is open), not one query may fail, and once the consumer closes its session the
// revoke must go ahead. TestRevokeGateHoldsOnARealSession (tests/gate_test.go) checks the
// gate's status, CLI and operator commands on an idle session; this one checks the
// consumer's side: queries running through the hold, with terminate_sessions on.
func TestNaiveConsumerHeldByGate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and PostgreSQL")
	}
	s := defaultSettings()
	s.Rotations, s.NaiveRotations, s.NaiveHold = 0, 1, 6*time.Second
	env, obs := newEnv(t, s)
	res := runNaiveGated(t, env, obs, s)
	var buf strings.Builder
	reportGated(&buf, s, res)
	t.Log(buf.String())
	for _, p := range res.problems(s.NaiveRotations) {
		t.Error(p)
	}
}
