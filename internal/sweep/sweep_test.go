package sweep

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/telemetry"
)

const inventoryText = `version: 1
defaults:
  owner: platform
secrets:
  - id: a/never
    kind: postgres
    max_age: 1h
    postgres: {host: localhost, sslmode: disable, database: d, role: a, admin: {username: k, password: "env:PW"}}
  - id: a/fresh
    kind: postgres
    owner: payments
    max_age: 30d
    postgres: {host: localhost, sslmode: disable, database: d, role: b, admin: {username: k, password: "env:PW"}}
  - id: v/unreadable
    kind: postgres
    store: {type: vault}
    max_age: 30d
    postgres: {host: localhost, sslmode: disable, database: d, role: c, admin: {username: k, password: "env:PW"}}
  - id: v/unreadable-too
    kind: postgres
    store: {type: vault}
    postgres: {host: localhost, sslmode: disable, database: d, role: d, admin: {username: k, password: "env:PW"}}
notifications:
  routes:
    - name: ops
      url: env:SWEEP_TEST_URL
      signing_key: env:SWEEP_TEST_KEY
      events: [secret_overdue]
`

// receiver verifies each delivery's signature and keeps the events; with fail set it
// answers 500, which the sender retries and then reports.
type receiver struct {
	key []byte

	mu       sync.Mutex
	fail     bool
	events   []notify.Event
	rejected int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var e notify.Event
	if err := notify.Verify(rc.key, r.Header.Get(notify.HeaderSignature), body, time.Now(), 0); err != nil || json.Unmarshal(body, &e) != nil || e.ID != r.Header.Get(notify.HeaderEventID) {
		rc.rejected++
		http.Error(w, "bad", http.StatusUnauthorized)
		return
	}
	rc.events = append(rc.events, e)
}

func (rc *receiver) received() ([]notify.Event, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]notify.Event(nil), rc.events...), rc.rejected
}

func (rc *receiver) setFail(b bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = b
}

// TestSweep runs sweeps over a real file store, an embedded Temporal server and a real
// webhook receiver, and reads the gauges as Prometheus would: a never-rotated secret is
// overdue and announced once, signed, however often it is swept; a secret whose store
// cannot be read has no age and no verdict, counts as a store error and keeps the sweep
// from counting as a success; a webhook that is down is counted and tried again at the
// sweep after its backoff, and not before.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	rc := &receiver{key: []byte("sweep-test-signing-key-0123456789")}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	t.Setenv("SWEEP_TEST_URL", hook.URL)
	t.Setenv("SWEEP_TEST_KEY", string(rc.key))

	f := newFixture(t, inventoryText)
	canary := secret.NewSensitive("Canary-sweep-5d2f-DoNotLeak")
	if _, err := f.store.Put(ctx, "a/fresh", secret.Material{"password": canary}, nil); err != nil {
		t.Fatal(err)
	}
	store, reg := f.store, f.reg
	s := f.sweep()
	s.Notifier = f.resolver
	clock := time.Now()
	s.Observer.Now = func() time.Time { return clock }

	// First sweep, with the webhook down.
	rc.setFail(true)
	s.Once(ctx)
	s.Wait()
	m := gather(t, reg)
	for _, want := range []struct {
		name, secretID string
		value          float64
		present        bool
	}{
		{"keyturn_secret_overdue", "a/never", 1, true},
		{"keyturn_secret_overdue", "a/fresh", 0, true},
		{"keyturn_secret_overdue", "v/unreadable", 0, false},
		{"keyturn_secret_age_seconds", "a/never", 0, false},
		{"keyturn_secret_age_seconds", "v/unreadable", 0, false},
		{"keyturn_secret_max_age_seconds", "a/never", 3600, true},
		{"keyturn_secret_max_age_seconds", "v/unreadable", 30 * 86400, true},
		{"keyturn_revokes_outstanding", "a/never", 0, true},
		{"keyturn_revokes_outstanding", "v/unreadable", 0, true},
	} {
		v, ok := m.value(want.name, "secret_id", want.secretID)
		if ok != want.present || (ok && v != want.value) {
			t.Errorf("%s{secret_id=%q} = %v (present %v), want %v (present %v)", want.name, want.secretID, v, ok, want.value, want.present)
		}
	}
	if age, ok := m.value("keyturn_secret_age_seconds", "secret_id", "a/fresh"); !ok || age < 0 || age > 600 {
		t.Errorf("a/fresh was put just now, its age is %v (present %v)", age, ok)
	}
	if labels := m.labels("keyturn_secret_overdue", "secret_id", "a/fresh"); labels["owner"] != "payments" || labels["kind"] != "postgres" {
		t.Errorf("the gauges carry kind and owner: %v", labels)
	}
	if labels := m.labels("keyturn_secret_overdue", "secret_id", "a/never"); labels["owner"] != "platform" {
		t.Errorf("the owner from the defaults block: %v", labels)
	}
	if n, _ := m.value("keyturn_sweep_errors_total", "source", "store"); n != 2 {
		t.Errorf("keyturn_sweep_errors_total{source=store} = %v, want 2 (v/unreadable and v/unreadable-too)", n)
	}
	if n, _ := m.value("keyturn_sweep_errors_total", "source", "notify"); n != 1 {
		t.Errorf("keyturn_sweep_errors_total{source=notify} = %v, want 1 (the webhook was down)", n)
	}
	if n, ok := m.value("keyturn_sweep_errors_total", "source", "incidents"); !ok || n != 0 {
		t.Errorf("every source's error counter starts at 0: incidents = %v (present %v)", n, ok)
	}
	if _, ok := m.value("keyturn_sweep_last_success_timestamp_seconds", "", ""); ok {
		t.Error("a sweep that could not read a store is not a success")
	}
	if events, _ := rc.received(); len(events) != 0 {
		t.Fatalf("the webhook was down, yet it got %d events", len(events))
	}
	if got := f.spans.GetSpans(); len(got) != 1 || got[0].Name != "Sweep" || !hasAttrs(got[0].Attributes, "keyturn.sweep.secrets=4", "keyturn.sweep.overdue=1", "keyturn.sweep.failed_reads=2") {
		t.Errorf("want one Sweep span with its counts, got %+v", got)
	}
	states := map[string]float64{}
	for _, metric := range m["keyturn_revokes_outstanding"].GetMetric() {
		if hasLabel(metric, "secret_id", "a/never") {
			l := map[string]string{}
			for _, p := range metric.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			states[l["state"]] = metric.GetGauge().GetValue()
		}
	}
	if len(states) != len(secretstate.RevokeStates) || states["retrying"] != 0 || states["rollback"] != 0 || states["failed"] != 0 || states["waiting"] != 0 || states["held"] != 0 {
		t.Errorf("keyturn_revokes_outstanding of a/never: want a 0 for each state, got %v", states)
	}

	// The webhook is back, but the failed event waits for its backoff: the next sweep
	// does not send it.
	rc.setFail(false)
	s.Once(ctx)
	s.Wait()
	if events, _ := rc.received(); len(events) != 0 {
		t.Fatalf("a failed event is sent again only after its backoff; got %d", len(events))
	}
	// After it, the next sweep sends it, and the one after does not.
	clock = clock.Add(FirstResendWait)
	for range 2 {
		s.Once(ctx)
		s.Wait()
	}
	events, rejected := rc.received()
	if len(events) != 1 || rejected != 0 {
		t.Fatalf("want one signed secret_overdue event for a/never, got %d (%d rejected): %+v", len(events), rejected, events)
	}
	e := events[0]
	if e.Type != notify.SecretOverdue || e.SecretID != "a/never" || e.Owner != "platform" || e.Kind != "postgres" || e.Overdue == nil ||
		e.Overdue.Reason != "no current version: never rotated" || e.Overdue.Version != "" || e.Overdue.MaxAgeSeconds != 3600 || e.Overdue.MaxAgeFrom != inventory.PolicyMaxAge {
		t.Errorf("the event must say which secret is overdue and why: %+v %+v", e, e.Overdue)
	}
	if want := notify.OverdueEvent(time.Now(), "a/never", "", "", nil, notify.Overdue{}).ID; e.ID != want {
		t.Errorf("event ID %s, want %s: derived from the secret and its (missing) version only", e.ID, want)
	}

	// A first version makes a/never current and young: no longer overdue, nothing sent.
	if _, err := store.Put(ctx, "a/never", secret.Material{"password": canary}, nil); err != nil {
		t.Fatal(err)
	}
	s.Once(ctx)
	s.Wait()
	m = gather(t, reg)
	if v, ok := m.value("keyturn_secret_overdue", "secret_id", "a/never"); !ok || v != 0 {
		t.Errorf("after its first version a/never is not overdue: %v %v", v, ok)
	}
	if events, _ := rc.received(); len(events) != 1 {
		t.Errorf("a secret no longer overdue is not announced: %d events", len(events))
	}
	if n, _ := m.value("keyturn_sweep_errors_total", "source", "store"); n != 10 {
		t.Errorf("keyturn_sweep_errors_total{source=store} = %v after 5 sweeps of 2 unreadable secrets, want 10", n)
	}
	if n, _ := m.value("keyturn_sweep_errors_total", "source", "notify"); n != 1 {
		t.Errorf("keyturn_sweep_errors_total{source=notify} = %v, want 1 (one failed attempt)", n)
	}
	for _, f := range m {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if strings.Contains(l.GetValue(), canary.Reveal()) {
					t.Fatal("a label holds material")
				}
			}
		}
	}
}

// TestResendBackoff: each failed attempt of an overdue notification doubles the wait
// before the next, up to MaxResendWait.
func TestResendBackoff(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := &notice{}
	for i, want := range []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute, 160 * time.Minute, 4 * time.Hour, 4 * time.Hour} {
		n.failed(at)
		if got := n.retryAt.Sub(at); got != want {
			t.Errorf("after %d failure(s): wait %v, want %v", i+1, got, want)
		}
		if n.due(at.Add(want-time.Second)) || !n.due(at.Add(want)) {
			t.Errorf("after %d failure(s): due before %v, or not at it", i+1, want)
		}
	}
}

// TestSampleOfSecret: the gauges get the state of an outstanding revoke as a 1 in that
// state's series and 0 in the others, every state present; none when Temporal could
// not be asked. The age counts from the store's creation time, and a version without
// one has no age series.
func TestSampleOfSecret(t *testing.T) {
	one, zero := 1, 0
	for _, c := range []struct {
		name string
		sec  secretstate.Secret
		want map[string]int
	}{
		{"retrying", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RevokeRetrying}, map[string]int{"retrying": 1, "rollback": 0, "failed": 0, "waiting": 0, "held": 0}},
		{"failed", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RevokeFailed}, map[string]int{"retrying": 0, "rollback": 0, "failed": 1, "waiting": 0, "held": 0}},
		{"rollback", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RollbackRetrying}, map[string]int{"retrying": 0, "rollback": 1, "failed": 0, "waiting": 0, "held": 0}},
		{"waiting", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RevokeWaiting}, map[string]int{"retrying": 0, "rollback": 0, "failed": 0, "waiting": 1, "held": 0}},
		{"held", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RevokeHeld}, map[string]int{"retrying": 0, "rollback": 0, "failed": 0, "waiting": 0, "held": 1}},
		{"none", secretstate.Secret{RevokesOutstanding: &zero}, map[string]int{"retrying": 0, "rollback": 0, "failed": 0, "waiting": 0, "held": 0}},
		{"unknown", secretstate.Secret{}, nil},
	} {
		got := toSample(c.sec).RevokesOutstanding
		if len(got) != len(c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	age := secretstate.Seconds(time.Hour)
	if s := toSample(secretstate.Secret{Current: &secret.Version{CreatedAt: created}, Age: &age}); s.Created == nil || !s.Created.Equal(created) {
		t.Errorf("the sample carries the creation time: %+v", s)
	}
	if s := toSample(secretstate.Secret{Current: &secret.Version{}}); s.Created != nil {
		t.Errorf("a version without a creation time has no age: %+v", s)
	}
}

// TestReadErrorSources: the sources a secret's read errors name are sources of the
// sweep's error counter.
func TestReadErrorSources(t *testing.T) {
	errs := secretstate.Secret{StoreError: "x", RotationError: "y", ScheduleError: "z"}.ReadErrors()
	if len(errs) != 3 {
		t.Fatalf("want 3 read errors, got %v", errs)
	}
	for _, e := range errs {
		if !slices.Contains(telemetry.SweepSources, e.Source) {
			t.Errorf("source %q is not one of telemetry.SweepSources %v", e.Source, telemetry.SweepSources)
		}
	}
}

// TestSweepLastSuccess: a sweep that reads everything sets the last-success time, and Run
// sweeps at once and stops with its context.
func TestSweepLastSuccess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFixture(t, strings.Split(inventoryText, "  - id: v/unreadable")[0])
	reg := f.reg
	s := f.sweep()
	s.Interval = time.Hour
	before := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var at float64
	deadline := time.Now().Add(time.Minute)
	for ok := false; !ok; at, ok = gather(t, reg).value("keyturn_sweep_last_success_timestamp_seconds", "", "") {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep at once")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if at < float64(before.Unix())-1 || at > float64(time.Now().Unix())+1 {
		t.Errorf("last success %v is not the time of the sweep (between %v and now)", at, before.Unix())
	}
	cancel()
	<-done
}

// fixture is what a sweep runs over: an inventory, a file store (and no Vault), an
// embedded Temporal server, and telemetry into a registry.
type fixture struct {
	inv      *inventory.Inventory
	store    *file.Store
	resolver *binding.Resolver
	gauges   *telemetry.SecretGauges
	reg      *prometheus.Registry
	spans    *tracetest.InMemoryExporter
	sweep    func() *Sweep
}

func newFixture(t *testing.T, inventoryYAML string) fixture {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, []byte(inventoryYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := file.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.Client(t, testenv.Temporal(t, logger), logger, nil)
	reg := prometheus.NewRegistry()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(ctx, telemetry.Options{Registry: reg, SpanExporter: spans, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(ctx) })
	gauges, err := telemetry.NewSecretGauges(tel)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{inv: inv, store: store, resolver: binding.New(inv, binding.Backends{File: store}), gauges: gauges, reg: reg, spans: spans}
	f.sweep = func() *Sweep {
		return &Sweep{Observer: &secretstate.Observer{Inventory: inv, Stores: f.resolver, Temporal: c}, Gauges: gauges, Logger: logger, TracerProvider: tel.TracerProvider()}
	}
	return f
}

// families are gathered metrics by name.
type families map[string]*dto.MetricFamily

func gather(t *testing.T, reg *prometheus.Registry) families {
	t.Helper()
	fs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := families{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// value is the value of the series of name whose label is value; with no label, of its
// only series.
func (f families) value(name, label, value string) (float64, bool) {
	for _, m := range f[name].GetMetric() {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func (f families) labels(name, label, value string) map[string]string {
	out := map[string]string{}
	for _, m := range f[name].GetMetric() {
		if hasLabel(m, label, value) {
			for _, l := range m.GetLabel() {
				out[l.GetName()] = l.GetValue()
			}
		}
	}
	return out
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// hasAttrs reports whether attrs hold every key=value given.
func hasAttrs(attrs []attribute.KeyValue, want ...string) bool {
	have := map[string]bool{}
	for _, kv := range attrs {
		have[string(kv.Key)+"="+kv.Value.Emit()] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}
