package tests

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/testenv"
	"github.com/keyturn/keyturn/workflows"
)

// TestIncidentNotifiesAndMeasures runs two incidents in contain mode on one worker.
func TestIncidentNotifiesAndMeasures(t *testing.T) {
	rc := &receiver{key: []byte("incident-signing-key-0123456789")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("KEYTURN_TEST_NOTIFY_URL", srv.URL)
	t.Setenv("KEYTURN_TEST_NOTIFY_KEY", string(rc.key))
	env := testenv.New(t, testenv.Options{NoWorker: true,
		Secrets: []demo.Secret{
			{ID: "e2e/ok/app", Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "app"}},
			{ID: "e2e/ok/billing", Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "billing"}},
			// Its check query needs a table the group role cannot read: Test fails.
			{ID: "e2e/broken", Strategy: "alternating", Grace: "0s", CheckQuery: "SELECT count(*) FROM vault_only", Target: demo.Target{Role: "broken"}},
		},
		Extra: "notifications:\n  routes:\n    - name: security\n      url: env:KEYTURN_TEST_NOTIFY_URL\n      format: json\n" +
			"      signing_key: env:KEYTURN_TEST_NOTIFY_KEY\n      events: [incident_started, incident_contained, incident_finished]\n",
	})
	superExec(t, env, "CREATE TABLE vault_only (x int)")
	_, _ = startTracedWorker(t, env)

	code, out := keyturn(t, env, "incident", "start", "--id", "notify-ok", "--select", "prefix=e2e/ok/", "--mode", "contain",
		"--reason", "drill: all rotate", "--operator", "oncall", "--yes", "--progress-every", "100ms")
	if code != 0 || !strings.Contains(out, "2/2 done: 2 contained, 2 rotated, 0 failed") {
		t.Fatalf("incident notify-ok exited %d:\n%s", code, out)
	}
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-ok"), "", "incident_contain_all_rotated")

	code, out = keyturn(t, env, "incident", "start", "--id", "notify-fail", "--select", "prefix=e2e/", "--mode", "contain",
		"--reason", "drill: one fails", "--operator", "oncall", "--yes", "--progress-every", "100ms")
	if code == 0 || !strings.Contains(out, "3/3 done: 3 contained, 2 rotated, 1 failed") {
		t.Fatalf("incident notify-fail exited %d, want a failure with one secret failed:\n%s", code, out)
	}
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-fail"), "", "incident_contain_one_fails")
}
