package tests

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestIncidentNotifiesAndMeasures runs two incidents in contain mode on one worker with
// /metrics, two webhook routes (a real receiver that checks every signature, and one that
// is down) and a canary planted as the current password of one secret:
//   - an incident over two secrets delivers incident_started, incident_contained and
//     incident_finished, signed and with true counts, and completes although one route
//     is dead; /metrics counts it rotated, two secrets contained and rotated, and one
//     containment time;
//   - an incident over three, one of which fails its test, says so in incident_finished
//     and on /metrics (failed), and the counts add up;
//   - no body, metric, log line, CLI output or incident history carries the canary, the
//     new passwords, the admin password or the signing key.
func TestIncidentNotifiesAndMeasures(t *testing.T) {
	rc := &receiver{key: []byte("incident-signing-key-0123456789")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("KEYTURN_TEST_NOTIFY_URL", srv.URL)
	t.Setenv("KEYTURN_TEST_NOTIFY_KEY", string(rc.key))
	// Nothing listens there: every delivery to it is refused.
	t.Setenv("KEYTURN_TEST_DEAD_URL", "http://127.0.0.1:"+strconv.Itoa(freePort(t))+"/hook")
	incidentEvents := "      events: [incident_started, incident_contained, incident_finished]\n"
	env := testenv.New(t, testenv.Options{NoWorker: true,
		Secrets: []demo.Secret{
			{ID: "e2e/ok/app", Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "app"}},
			{ID: "e2e/ok/billing", Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "billing"}},
			// Its check query needs a table the group role cannot read: Test fails.
			{ID: "e2e/broken", Strategy: "alternating", Grace: "0s", CheckQuery: "SELECT count(*) FROM vault_only", Target: demo.Target{Role: "broken"}},
		},
		Extra: "notifications:\n  routes:\n" +
			"    - name: security\n      url: env:KEYTURN_TEST_NOTIFY_URL\n      format: json\n      signing_key: env:KEYTURN_TEST_NOTIFY_KEY\n" + incidentEvents +
			"    - name: dead\n      url: env:KEYTURN_TEST_DEAD_URL\n      format: slack\n" + incidentEvents,
	})
	superExec(t, env, "CREATE TABLE vault_only (x int)")
	tel, _, metricsURL := tracedTelemetry(t)
	startTracedWorker(t, env, tel)
	ctx := context.Background()

	// The canary is e2e/ok/app's current password: twin app_a logs in with it.
	canary := secret.NewSensitive("Canary-Incident-4c1d-DoNotLeak")
	verifier, err := postgres.SCRAMVerifier(canary)
	if err != nil {
		t.Fatal(err)
	}
	superExec(t, env, "CREATE ROLE app_a LOGIN IN ROLE app PASSWORD '"+verifier+"'")
	if _, err := env.Store.Put(ctx, "e2e/ok/app", secret.Material{"password": canary}, map[string]string{"role": "app_a", "username": "app_a", "strategy": "alternating"}); err != nil {
		t.Fatal(err)
	}

	var cliOut strings.Builder
	code, out := keyturn(t, env, "incident", "start", "--id", "notify-ok", "--select", "prefix=e2e/ok/", "--mode", "contain",
		"--reason", "drill: all rotate", "--operator", "oncall", "--yes", "--progress-every", "100ms")
	cliOut.WriteString(out)
	if code != 0 || !strings.Contains(out, "2/2 done: 2 contained, 2 rotated, 0 failed") {
		t.Fatalf("incident notify-ok exited %d:\n%s", code, out)
	}
	if err := login(ctx, env, "app_a", canary); err == nil {
		t.Fatal("the canary credential still logs in after the incident contained it")
	}
	ok := incidentEventsOf(t, rc, "notify-ok")
	wantIncident := notify.Incident{Mode: "contain", Selector: "prefix=e2e/ok/", Reason: "drill: all rotate", Operator: "oncall", Secrets: 2}
	checkIncidentEvent(t, ok[notify.IncidentStarted], "", wantIncident)
	contained := wantIncident
	contained.Contained = 2
	checkIncidentEvent(t, ok[notify.IncidentContained], "", contained)
	finished := contained
	finished.Rotated = 2
	checkIncidentEvent(t, ok[notify.IncidentFinished], workflows.IncidentRotated, finished)
	if ok[notify.IncidentContained].Incident.ContainedSeconds <= 0 {
		t.Errorf("incident_contained does not say when the scope was contained: %+v", ok[notify.IncidentContained].Incident)
	}
	if !strings.Contains(env.Logs.String(), "incident notification not delivered") || !strings.Contains(env.Logs.String(), `dead: notify route \"dead\"`) {
		t.Error("the worker's log does not say that the dead route got nothing")
	}

	families := scrape(t, metricsURL)
	checkCounter(t, families, "keyturn_incidents_total", map[string]float64{`outcome="rotated"`: 1})
	checkCounter(t, families, "keyturn_incident_secrets_total", map[string]float64{`state="contained"`: 2, `state="rotated"`: 2})
	checkContainments(t, families, 1)

	code, out = keyturn(t, env, "incident", "start", "--id", "notify-fail", "--select", "prefix=e2e/", "--mode", "contain",
		"--reason", "drill: one fails", "--operator", "oncall", "--yes", "--progress-every", "100ms")
	cliOut.WriteString(out)
	if code == 0 || !strings.Contains(out, "3/3 done: 3 contained, 2 rotated, 1 failed") {
		t.Fatalf("incident notify-fail exited %d, want a failure with one secret failed:\n%s", code, out)
	}
	failed := incidentEventsOf(t, rc, "notify-fail")
	wantIncident = notify.Incident{Mode: "contain", Selector: "prefix=e2e/", Reason: "drill: one fails", Operator: "oncall", Secrets: 3}
	checkIncidentEvent(t, failed[notify.IncidentStarted], "", wantIncident)
	finished = wantIncident
	finished.Contained, finished.Rotated, finished.Failed, finished.NeedsHuman = 3, 2, 1, 1
	checkIncidentEvent(t, failed[notify.IncidentFinished], workflows.IncidentFailed, finished)
	if c := failed[notify.IncidentContained].Incident; c == nil || c.Contained != 3 || c.NotContained != 0 {
		t.Errorf("incident_contained of notify-fail: %+v, want 3 contained, 0 not contained", c)
	}

	families = scrape(t, metricsURL)
	checkCounter(t, families, "keyturn_incidents_total", map[string]float64{`outcome="rotated"`: 1, `outcome="failed"`: 1})
	checkCounter(t, families, "keyturn_incident_secrets_total", map[string]float64{`state="contained"`: 5, `state="rotated"`: 4, `state="failed"`: 1})
	checkContainments(t, families, 2)

	// No material anywhere the incidents reported to.
	_, admin, err := env.Store.Read(ctx, "admin/e2e", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"canary": canary.Reveal(), "admin password": admin.Get("password").Reveal(), "signing key": string(rc.key)}
	for _, id := range []secret.ID{"e2e/ok/app", "e2e/ok/billing"} {
		_, m := current(t, env, id)
		secrets["new password of "+string(id)] = m.Get("password").Reveal()
	}
	_, bodies, _ := rc.received()
	places := map[string]string{
		"webhook bodies": strings.Join(bodies, "\n"), "/metrics": scrapeText(t, metricsURL),
		"worker/server logs": env.Logs.String(), "CLI output": cliOut.String(),
	}
	for _, id := range []string{"notify-ok", "notify-fail"} {
		js, err := protojson.Marshal(decodedHistory(t, env, workflows.IncidentWorkflowID(id), ""))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(js), "NotifyIncident") {
			t.Fatalf("the history of incident %s has no NotifyIncident activity: the scan would prove nothing", id)
		}
		places["history of incident "+id] = string(js)
		page, err := protojson.Marshal(decodedHistory(t, env, workflows.IncidentWorkflowID(id)+"/page/1", ""))
		if err != nil {
			t.Fatal(err)
		}
		places["history of incident "+id+"'s page"] = string(page)
	}
	for what, value := range secrets {
		for where, data := range places {
			if strings.Contains(data, value) {
				t.Errorf("the %s appears in the %s", what, where)
			}
		}
	}
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-ok"), "", "incident_contain_all_rotated")
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-fail"), "", "incident_contain_one_fails")
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-ok")+"/page/1", "", "incident_page_all_rotated")
	checkReplay(t, env, workflows.IncidentWorkflowID("notify-fail")+"/page/1", "", "incident_page_one_fails")

	// The rotation an incident ran after its batch containment does not contain again, and
	// does revoke the previous version again: something could have re-enabled it between
	// the batch and the rotation.
	child := workflows.RotateWorkflowID("e2e/ok/app")
	steps := map[string]int{}
	local, regular := stepRuns(t, decodedHistory(t, env, child, ""))
	for _, name := range append(local, regular...) {
		steps[name]++
	}
	if steps["Contain"] != 0 || steps["Revoke"] != 1 {
		t.Errorf("the rotation %s after the batch containment ran Contain %d and Revoke %d times, want 0 and 1", child, steps["Contain"], steps["Revoke"])
	}
	checkReplay(t, env, child, "", "rotate_contained_by_incident")
}

// incidentEventsOf returns the incident's events by type, once all three have arrived;
// it fails on a forged delivery, a duplicate or an event that names another workflow.
func incidentEventsOf(t *testing.T, rc *receiver, incidentID string) map[notify.Type]notify.Event {
	t.Helper()
	byType := func() map[notify.Type]notify.Event {
		events, _, rejected := rc.received()
		if rejected != 0 {
			t.Fatalf("the receiver rejected %d deliveries (bad signature or body)", rejected)
		}
		out := map[notify.Type]notify.Event{}
		for _, e := range events {
			if e.IncidentID != incidentID {
				continue
			}
			if _, dup := out[e.Type]; dup {
				t.Fatalf("incident %s: %s delivered twice: %+v", incidentID, e.Type, e)
			}
			out[e.Type] = e
		}
		return out
	}
	// incident_finished is waited for before the workflow ends; the others were sent
	// earlier and have arrived or failed by then.
	got := byType()
	if len(got) != 3 {
		t.Fatalf("incident %s: received %d events, want incident_started, incident_contained and incident_finished: %+v", incidentID, len(got), got)
	}
	for typ, e := range got {
		if e.WorkflowID != workflows.IncidentWorkflowID(incidentID) || e.RunID != "" || e.SecretID != "" || e.ID != e.DerivedID() {
			t.Errorf("incident %s: %s names %q run %q secret %q, ID %s (derived %s)", incidentID, typ, e.WorkflowID, e.RunID, e.SecretID, e.ID, e.DerivedID())
		}
	}
	return got
}

// checkIncidentEvent compares an incident event's outcome and summary, the containment
// time aside.
func checkIncidentEvent(t *testing.T, e notify.Event, outcome string, want notify.Incident) {
	t.Helper()
	if e.Incident == nil {
		t.Errorf("%s: no incident summary", e.Type)
		return
	}
	got := *e.Incident
	got.ContainedSeconds = 0
	if e.Outcome != outcome || got != want {
		t.Errorf("%s: outcome %q, summary %+v; want %q, %+v", e.Type, e.Outcome, got, outcome, want)
	}
}

// checkCounter compares a counter family's series with want, by label set.
func checkCounter(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	for _, m := range families[name].GetMetric() {
		got[labelsOf(m)] = m.GetCounter().GetValue()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// checkContainments checks that the containment histogram has n observations, each
// positive.
func checkContainments(t *testing.T, families map[string]*dto.MetricFamily, n uint64) {
	t.Helper()
	ms := families["keyturn_incident_containment_duration_seconds"].GetMetric()
	if len(ms) != 1 || ms[0].GetHistogram().GetSampleCount() != n || ms[0].GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("keyturn_incident_containment_duration_seconds: %v, want %d positive observation(s)", ms, n)
	}
}
