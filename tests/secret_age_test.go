package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

// TestNeverRotatedSecretIsOverdue runs `keyturn worker` with a 10 s sweep over an
// inventory of two Postgres secrets, neither ever rotated, and a webhook route for secret_overdue:
//   - both show keyturn_secret_overdue 1 on /metrics without any rotation running, and a
//     real receiver gets one signed secret_overdue event for each, however many sweeps;
//   - after e2e/app's rotation, its age is small and it is no longer overdue;
//   - `keyturn status --overdue` lists exactly e2e/never and exits 2, in table and JSON,
//     and `keyturn status` shows each secret's age, maximum age and last outcome;
//   - a third secret, e2e/vaulted, lives in a Vault neither the worker nor the CLI can
//     reach: it has no age or overdue series, the store error is counted, no sweep is a
//     success, and status says its state is unknown instead of guessing.
func TestNeverRotatedSecretIsOverdue(t *testing.T) {
	rc := &receiver{key: []byte("overdue-webhook-signing-key-4242")}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	t.Setenv("KEYTURN_TEST_NOTIFY_URL", hook.URL)
	t.Setenv("KEYTURN_TEST_NOTIFY_KEY", string(rc.key))
	t.Setenv("VAULT_ADDR", "") // e2e/vaulted's store cannot be reached: neither by the worker nor by status
	env := testenv.New(t, testenv.Options{NoWorker: true, Secrets: []demo.Secret{
		{ID: "e2e/app", Strategy: "alternating", Grace: "0s", Owner: "payments", MaxAge: "1h"},
		{ID: "e2e/never", Strategy: "alternating", Grace: "0s", Owner: "platform", MaxAge: "30d", Target: demo.Target{Role: "never"}},
	}, Extra: vaultedSecret + "notifications:\n  routes:\n    - name: owners\n      url: env:KEYTURN_TEST_NOTIFY_URL\n" +
		"      signing_key: env:KEYTURN_TEST_NOTIFY_KEY\n      events: [secret_overdue]\n      match: {owners: [payments, platform]}\n"})
	metrics := "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/metrics"
	startWorker(t, env, "--metrics-addr", strings.TrimSuffix(strings.TrimPrefix(metrics, "http://"), "/metrics"), "--sweep-interval", "10s")

	// The first sweep runs at start: both secrets are overdue before anything rotates.
	waitFor(t, time.Minute, "both never-rotated secrets to show overdue on /metrics", func() bool {
		f := scrape(t, metrics)["keyturn_secret_overdue"]
		return gaugeOf(f, "e2e/app") == 1 && gaugeOf(f, "e2e/never") == 1
	})
	families := scrape(t, metrics)
	if s := series(families["keyturn_secret_overdue"]); !s[`kind="postgres",owner="platform",secret_id="e2e/never"`] {
		t.Errorf("keyturn_secret_overdue series lack kind and owner: %v", s)
	}
	if gaugeOf(families["keyturn_secret_max_age_seconds"], "e2e/never") != 30*86400 || gaugeOf(families["keyturn_secret_max_age_seconds"], "e2e/app") != 3600 {
		t.Errorf("keyturn_secret_max_age_seconds: %v", series(families["keyturn_secret_max_age_seconds"]))
	}
	if families["keyturn_secret_age_seconds"] != nil && len(families["keyturn_secret_age_seconds"].GetMetric()) != 0 {
		t.Errorf("a secret without a current version has no age series: %v", series(families["keyturn_secret_age_seconds"]))
	}
	if gaugeOf(families["keyturn_revokes_outstanding"], "e2e/app") != 0 {
		t.Errorf("no revoke outstanding: %v", series(families["keyturn_revokes_outstanding"]))
	}
	// e2e/vaulted's store could not be read: no age, no verdict (not a stale or zero
	// one), its policy still shown, the error counted, and no sweep counts as a success.
	if gaugeOf(families["keyturn_secret_overdue"], "e2e/vaulted") != -1 || gaugeOf(families["keyturn_secret_age_seconds"], "e2e/vaulted") != -1 ||
		gaugeOf(families["keyturn_secret_max_age_seconds"], "e2e/vaulted") != 30*86400 {
		t.Errorf("e2e/vaulted: want only its max age; overdue %v, age %v", series(families["keyturn_secret_overdue"]), series(families["keyturn_secret_age_seconds"]))
	}
	if n := counterOf(families["keyturn_sweep_errors_total"], "store"); n < 1 {
		t.Errorf("keyturn_sweep_errors_total{source=store} = %v, want at least 1", n)
	}
	if f := families["keyturn_sweep_last_success_timestamp_seconds"]; f != nil && len(f.GetMetric()) > 0 {
		t.Errorf("a sweep that could not read e2e/vaulted's store is no success: %v", series(f))
	}

	waitFor(t, time.Minute, "a secret_overdue event for each secret", func() bool {
		events, _, _ := rc.received()
		return len(events) >= 2
	})

	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate e2e/app exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the next sweep to find e2e/app rotated", func() bool {
		f := scrape(t, metrics)
		return gaugeOf(f["keyturn_secret_overdue"], "e2e/app") == 0 && gaugeOf(f["keyturn_secret_age_seconds"], "e2e/app") >= 0
	})
	families = scrape(t, metrics)
	if age := gaugeOf(families["keyturn_secret_age_seconds"], "e2e/app"); age < 0 || age > 600 {
		t.Errorf("e2e/app was rotated just now, its age is %v s", age)
	}
	if gaugeOf(families["keyturn_secret_overdue"], "e2e/never") != 1 {
		t.Error("e2e/never is still overdue")
	}
	// Sweeps go on (at least two since the events arrived); each secret was announced once.
	events, bodies, rejected := rc.received()
	perSecret := map[secret.ID]int{}
	for _, e := range events {
		perSecret[e.SecretID]++
		if e.Type != notify.SecretOverdue || e.Overdue == nil || e.Overdue.Reason != "no current version: never rotated" || e.Overdue.MaxAgeSeconds == 0 {
			t.Errorf("event %+v %+v must say the secret is overdue and why", e, e.Overdue)
		}
	}
	if rejected != 0 || len(events) != 2 || perSecret["e2e/app"] != 1 || perSecret["e2e/never"] != 1 {
		t.Fatalf("want one signed secret_overdue event per secret, got %d (%d rejected): %v", len(events), rejected, perSecret)
	}
	for _, e := range events {
		if want := map[secret.ID]string{"e2e/app": "payments", "e2e/never": "platform"}[e.SecretID]; e.Owner != want {
			t.Errorf("the event of %s names owner %q, want %q", e.SecretID, e.Owner, want)
		}
	}
	_, m := current(t, env, "e2e/app")
	for _, b := range bodies {
		if strings.Contains(b, m.Get("password").Reveal()) {
			t.Fatal("an overdue notification carries material")
		}
	}

	// keyturn status --overdue: exactly e2e/never, exit 2.
	code, out := keyturn(t, env, "status", "--overdue")
	t.Logf("keyturn status --overdue:\n%s", out)
	if code != cli.ExitOverdue || !strings.Contains(out, "e2e/never") || strings.Contains(out, "e2e/app") || !strings.Contains(out, "overdue: e2e/never: no current version: never rotated") ||
		!strings.Contains(out, "cannot tell whether e2e/vaulted is overdue: open the vault store") {
		t.Fatalf("status --overdue exited %d, want %d with e2e/never alone:\n%s", code, cli.ExitOverdue, out)
	}
	code, out = keyturn(t, env, "status", "--overdue", "-o", "json")
	var obs secretstate.Observation
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &obs); err != nil || code != cli.ExitOverdue {
		t.Fatalf("status --overdue -o json exited %d, %v:\n%s", code, err, out)
	}
	if len(obs.Secrets) != 1 || obs.Secrets[0].ID != "e2e/never" || !obs.Secrets[0].IsOverdue() || obs.Secrets[0].Owner != "platform" ||
		obs.Secrets[0].MaxAge == nil || obs.Secrets[0].MaxAge.Duration() != 30*24*time.Hour || obs.Secrets[0].Age != nil {
		t.Fatalf("status --overdue -o json: %s", out)
	}

	// keyturn status: the secrets with their age and last outcome, then the rotations.
	code, out = keyturn(t, env, "status")
	t.Logf("keyturn status:\n%s", out)
	if code != 0 || !strings.Contains(out, "AGE") || !strings.Contains(out, "MAX AGE") || !strings.Contains(out, "never rotated") || !strings.Contains(out, "unknown: e2e/vaulted: store: open the vault store") {
		t.Fatalf("status exited %d:\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "e2e/app" && len(f) >= 8 && f[1] == "postgres" && f[2] == "payments":
			if f[4] != "1h" || f[5] != "no" || !strings.Contains(line, "rotated") {
				t.Errorf("e2e/app's row must show max age 1h, not overdue, last outcome rotated: %q", line)
			}
		case len(f) > 0 && f[0] == "e2e/vaulted":
			if f[3] != "?" || f[4] != "30d" || f[5] != "?" {
				t.Errorf("e2e/vaulted's row must show its age and verdict unknown: %q", line)
			}
		case len(f) > 0 && f[0] == "e2e/never" && f[1] == "postgres":
			if !strings.Contains(line, "never rotated") || !strings.Contains(line, "30d") || !strings.Contains(line, "yes") {
				t.Errorf("e2e/never's row must show it never rotated and overdue: %q", line)
			}
		}
	}
	code, out = keyturn(t, env, "status", "e2e/app", "-o", "json")
	var detail struct {
		Outcome string              `json:"outcome"`
		Secret  *secretstate.Secret `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &detail); err != nil || code != 0 || detail.Outcome != "rotated" || detail.Secret == nil || detail.Secret.IsOverdue() ||
		detail.Secret.Age == nil || detail.Secret.LastRotation == nil || detail.Secret.LastRotation.Outcome != "rotated" || *detail.Secret.RevokesOutstanding != 0 {
		t.Fatalf("status e2e/app -o json exited %d (%v):\n%s", code, err, out)
	}
}

// vaultedSecret is an inventory entry whose store is Vault, which the test gives neither
// the worker nor the CLI: its state cannot be read.
const vaultedSecret = `  - id: e2e/vaulted
    kind: postgres
    store: {type: vault}
    max_age: 30d
    postgres: {host: 127.0.0.1, port: 5999, database: demo, sslmode: disable, role: vaulted, admin: {username: keyturn_admin, password: "file:admin/e2e"}}
`

// counterOf is the value of the counter family's series for a source, -1 when it has none.
func counterOf(f *dto.MetricFamily, source string) float64 {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "source" && l.GetValue() == source {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// startWorker runs `keyturn worker` over the env, with extra flags, until the test ends.
func startWorker(t *testing.T, env *testenv.Env, extra ...string) *testenv.SyncBuffer {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	out := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"worker", "--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(),
		"-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile}, extra...)
	go func() { done <- cli.Execute(ctx, args, strings.NewReader(""), out, out) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("keyturn worker did not stop within 30s")
		}
	})
	waitFor(t, 30*time.Second, "keyturn worker to start", func() bool {
		select {
		case code := <-done:
			t.Fatalf("keyturn worker exited %d early:\n%s", code, out.String())
		default:
		}
		return strings.Contains(out.String(), "worker started")
	})
	return out
}

// gaugeOf is the value of the gauge family's series for a secret, -1 when it has none.
func gaugeOf(f *dto.MetricFamily, id secret.ID) float64 {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "secret_id" && l.GetValue() == string(id) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

var _ http.Handler = (*receiver)(nil)
