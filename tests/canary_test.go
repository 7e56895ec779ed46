package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	sdkpb "go.temporal.io/api/sdk/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// TestCanaryNeverLeaks plants a known password as the current credential, rotates, and
// scans every event of the workflow history (raw protobuf and JSON), every log line of the
// worker and server, all CLI output, the PostgreSQL server log (log_statement=all), every
// span the worker exported (names, attributes, events, status), the worker's /metrics and
// the CLI's OTLP exports for it, for the new password and for the admin password: zero
// hits.
//
// The rotation goes through the revoke gate: a consumer session stays open with the
// canary password, so the gate holds (then: hold). While it holds, `rotate --wait`, the
// status query, the UI's current details, `keyturn status` (table, one secret, JSON,
// --secrets JSON), the sweep's keyturn_revokes_outstanding{state="held"} and the
// revoke_held webhook are captured; `keyturn revoke-now` releases it (its output, the
// revoke_released webhook, keyturn_revoke_gate_waits_total), and the scanned history
// holds the CheckUsage activity's results. Webhook bodies are scanned as delivered and,
// for the gate's events, as Slack messages. `keyturn agent` renders the canary from the
// store, once and as a daemon that follows the rotation and reloads: its logs are
// scanned, and its files (material by design, not scanned) must be 0600 and hold the
// password. Last, an incident contains e2e/app with a session open on the new password:
// its report, which names the session it ended, and its histories are scanned, and its
// new password joins what is scanned for. The audit trail the worker and the CLI wrote
// (records and checkpoints as stored, `keyturn audit show` in text and JSON, `keyturn
// audit verify`) and the incident's evidence bundle, unpacked and as an archive, are
// scanned too.
//
// So that the worker's spans cover every kind of call Keyturn makes, the admin password
// is read from a real Vault, an API key (e2e/api) is rotated against a real HTTP API, and
// a rotation that stages its version in Secrets Manager (moto) and rolls back
// (e2e/broken) is told to a webhook whose URL path is a secret, as a Slack webhook's is. Their material,
// tokens and that URL are scanned for too, and the spans of each kind must be there,
// under the activities that made them.
func TestCanaryNeverLeaks(t *testing.T) {
	// The CLI exports its spans and metrics over OTLP, as configured by OTEL_*; the
	// worker's go to an in-memory exporter and a Prometheus registry, through the same
	// telemetry setup. All of it is scanned.
	otlp := &otlpReceiver{}
	collector := httptest.NewServer(otlp)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	tel, spans, metricsURL := tracedTelemetry(t)
	targets := startCanaryTargets(t, tel.TracerProvider())
	env := testenv.New(t, testenv.Options{
		PostgresSettings: map[string]string{"log_statement": "all"}, NoWorker: true,
		Secrets: []demo.Secret{
			{ID: "e2e/app", Strategy: "alternating", Grace: "0s", AdminPassword: "vault:secret/admin/e2e",
				RevokeGate: "{wait: until_unused, max_wait: 5s, then: hold, poll: 5s}"},
			// Its check query needs a table the group role cannot read: Test fails.
			{ID: "e2e/broken", Strategy: "alternating", Grace: "0s", CheckQuery: "SELECT count(*) FROM vault_only", Target: demo.Target{Role: "broken"}, Store: "awssm"},
		},
		Backends:  targets.backends,
		SeedAdmin: targets.seedAdmin,
		Seed:      targets.seed,
		Extra:     targets.inventory,
	})
	ctx := context.Background()
	startTracedWorker(t, env, tel)
	const id = secret.ID("e2e/app")

	// Plant the canary as version 1: twin app_a logs in with it.
	canary := secret.NewSensitive("Canary-7f3b9e-DoNotLeak-" + fmt.Sprint(len(env.StoreDir)))
	verifier, err := postgres.SCRAMVerifier(canary)
	if err != nil {
		t.Fatal(err)
	}
	superExec(t, env, "CREATE ROLE app_a LOGIN IN ROLE app PASSWORD '"+verifier+"'")
	if _, err := env.Store.Put(ctx, id, secret.Material{"password": canary}, map[string]string{"role": "app_a", "username": "app_a", "strategy": "alternating"}); err != nil {
		t.Fatal(err)
	}
	if err := login(ctx, env, "app_a", canary); err != nil {
		t.Fatalf("planted canary does not log in: %v", err)
	}
	// The gate's check sees other roles' sessions only with pg_read_all_stats.
	for _, s := range env.Inventory.Secrets {
		if s.ID == id {
			superExec(t, env, "GRANT pg_read_all_stats TO "+pgx.Identifier{s.Postgres.Admin.Username}.Sanitize())
		}
	}
	agent := startCanaryAgent(t, env, id, canary)
	if !strings.Contains(agent.onceOut, string(id)) {
		t.Fatalf("keyturn agent --once logged nothing about %s: the scan would prove nothing:\n%s", id, agent.onceOut)
	}

	// A consumer that read the canary once keeps its session: the gate holds the revoke,
	// and `rotate --wait` stops waiting and names the session.
	session := openSession(t, env, "app_a", canary, canaryGateApp)
	var cliOut strings.Builder
	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	cliOut.WriteString(out)
	if code == 0 || !strings.Contains(out, "is revoke_held") || !strings.Contains(out, "as "+canaryGateApp+" from 127.0.0.1") {
		t.Fatalf("rotate --wait must stop at the held revoke and name the session; exited %d:\n%s", code, out)
	}
	run := env.Client.GetWorkflow(ctx, workflows.RotateWorkflowID(id), "")
	held := captureHeldGate(t, env, id, "app_a")
	cliOut.WriteString(held.cli)
	heldEvent := gateEvent(t, targets.webhook, id, notify.RevokeHeld, workflows.GateHeld, "app_a")
	// The sweep while the revoke is held: keyturn_revokes_outstanding{state="held"}.
	heldSweepMetrics, heldOverdueBodies := canarySweep(t, env)
	if !regexp.MustCompile(`keyturn_revokes_outstanding\{[^}]*secret_id="e2e/app"[^}]*state="held"[^}]*\} 1\n`).MatchString(heldSweepMetrics) {
		t.Fatalf("the sweep does not export the held revoke: the scan would prove nothing:\n%.3000s", heldSweepMetrics)
	}
	if err := login(ctx, env, "app_a", canary); err != nil {
		t.Fatalf("the canary must still log in while its revoke is held: %v", err)
	}
	code, out = keyturn(t, env, "revoke-now", string(id))
	cliOut.WriteString(out)
	if code != 0 {
		t.Fatalf("revoke-now exited %d:\n%s", code, out)
	}
	var res workflows.RotateResult
	if err := run.Get(ctx, &res); err != nil || res.Outcome != workflows.OutcomeRotated || res.RevokeGate == nil || res.RevokeGate.State != workflows.GateRevokedByOperator {
		t.Fatalf("after revoke-now: %+v, %v", res, err)
	}
	releasedEvent := gateEvent(t, targets.webhook, id, notify.RevokeReleased, workflows.GateRevokedByOperator, "app_a")
	_ = session.Close(ctx)
	for _, args := range [][]string{{"status"}, {"status", string(id)}, {"status", string(id), "-o", "json"}, {"status", "--secrets", "-o", "json"}, {"status", "--overdue"}, {"get", string(id)}, {"get", string(id), "-o", "json"}, {"get", string(id), "--stage", "previous"}} {
		_, out := keyturn(t, env, args...)
		cliOut.WriteString(out)
	}
	if err := login(ctx, env, "app_a", canary); err == nil {
		t.Fatal("the canary credential still logs in after its rotation")
	}
	// The API key, and the rotation that stages in Secrets Manager, rolls back and is
	// told to the webhook.
	if code, out := keyturn(t, env, "rotate", "e2e/api", "--wait"); code != 0 {
		t.Fatalf("rotate e2e/api exited %d:\n%s", code, out)
	}
	// The Redis user and the MariaDB twins, twice each, so that one password of each is
	// revoked.
	for _, id := range []string{"e2e/redis", "e2e/mariadb"} {
		for range 2 {
			if code, out := keyturn(t, env, "rotate", id, "--wait"); code != 0 {
				t.Fatalf("rotate %s exited %d:\n%s", id, code, out)
			}
		}
	}
	superExec(t, env, "CREATE TABLE vault_only (x int)")
	if code, out := keyturn(t, env, "rotate", "e2e/broken", "--wait"); code == 0 || !strings.Contains(out, "rolled_back") {
		t.Fatalf("rotate e2e/broken should roll back; exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the rolled-back notification", func() bool {
		events, _, _ := targets.webhook.received()
		for _, e := range events {
			if e.Type == notify.RotationRolledBack {
				return true
			}
		}
		return false
	})
	events, hookBodies, rejected := targets.webhook.received()
	if rejected != 0 || len(events) != 3 {
		t.Fatalf("the webhook rejected %d deliveries; want revoke_held, revoke_released and rotation_rolled_back, got %+v", rejected, events)
	}
	// The receiver's JSON as delivered, and the same events as a chat message.
	webhookBodies := []byte(strings.Join(hookBodies, "\n"))
	for _, e := range []notify.Event{heldEvent, releasedEvent} {
		b, err := notify.Body(inventory.NotifyFormatSlack, e)
		if err != nil {
			t.Fatal(err)
		}
		webhookBodies = append(append(webhookBodies, '\n'), b...)
	}
	if !bytes.Contains(webhookBodies, []byte(canaryGateApp)) {
		t.Fatal("the webhook bodies do not name the held revoke's session: the scan would prove nothing")
	}

	_, newMaterial := current(t, env, id)
	agentOut := agent.follow(t, id, newMaterial.Get("password"))
	_, adminMaterial, err := env.Store.Read(ctx, "admin/e2e", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"canary":         canary.Reveal(),
		"new password":   newMaterial.Get("password").Reveal(),
		"admin password": adminMaterial.Get("password").Reveal(),
	}
	// The new password's SCRAM verifier as the server stores it, and both keys on disk.
	var verifierText string
	conn := superConn(t, env)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app_b'").Scan(&verifierText); err != nil {
		t.Fatal(err)
	}
	_, storedKey, _ := strings.Cut(verifierText, "$")
	secrets["new password's verifier keys"] = storedKey[strings.Index(storedKey, "$")+1:]
	for name, value := range targets.secrets(t, env) {
		secrets[name] = value
	}
	for name, path := range map[string]string{"file store key": filepath.Join(env.StoreDir, "store.key"), "codec key": env.CodecKeyFile} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		secrets[name] = strings.TrimSpace(lines[len(lines)-1])
	}
	// An incident contains e2e/app with a session open on the new password: it skips the
	// gate and its report names the session it ended. From here on the rotation scanned
	// is the gated run, not the incident's.
	incident := runCanaryIncident(t, env, id)
	secrets["incident's new password"] = incident.password

	// First wall: even decrypted, the history holds references only. Second wall: as
	// stored, the payloads are encrypted, so not even the handles show.
	stored := history(t, env, workflows.RotateWorkflowID(id), run.GetRunID())
	h := decodedHistory(t, env, workflows.RotateWorkflowID(id), run.GetRunID())
	raw, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	storedRaw, err := proto.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	handle := []byte(`"role":"app_b"`)
	if !bytes.Contains(raw, handle) {
		t.Fatal("the decoded history lacks the new version's handle: decoding failed and the scan would prove nothing")
	}
	if !bytes.Contains(raw, []byte("CheckUsage")) || !bytes.Contains(raw, []byte(canaryGateApp)) {
		t.Fatal("the decoded history lacks the CheckUsage activity's results naming the session: the scan would prove nothing")
	}
	if bytes.Contains(storedRaw, handle) {
		t.Fatal("the stored history shows payload content in the clear: the codec is not applied")
	}
	serverLog, err := env.Cluster.ServerLog()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(serverLog, "ALTER ROLE") {
		t.Fatal("the PostgreSQL log has no ALTER ROLE statement: log_statement=all did not take, the scan would prove nothing")
	}
	// What the Web UI shows beside the history: search attributes (the outcome among
	// them), the summary, and the current details that the workflow metadata query answers.
	desc, err := env.Client.DescribeWorkflowExecution(ctx, workflows.RotateWorkflowID(id), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	describe, err := protojson.Marshal(desc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(describe, []byte("KeyturnOutcome")) {
		t.Fatal("the description lacks KeyturnOutcome: the scan of search attributes would prove nothing")
	}
	md, err := env.Client.QueryWorkflow(ctx, workflows.RotateWorkflowID(id), run.GetRunID(), "__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var metadata sdkpb.WorkflowMetadata
	if err := md.Get(&metadata); err != nil {
		t.Fatal(err)
	}
	details := metadata.GetCurrentDetails()
	if !strings.Contains(details, "rotated") {
		t.Fatalf("the workflow's current details do not show its outcome: %s", details)
	}
	spanText := spantest.Dump(spans.GetSpans())
	if !strings.Contains(spanText, "RunActivity:Create") || !strings.Contains(spanText, workflows.RotateWorkflowID(id)) {
		t.Fatalf("the worker exported no span of the rotation with its attributes: the scan would prove nothing:\n%.2000s", spanText)
	}
	targets.wantSpans(t, spans.GetSpans())
	metricsText := scrapeText(t, metricsURL)
	if !strings.Contains(metricsText, "keyturn_rotation_step_duration_seconds") || !strings.Contains(metricsText, "temporal_") {
		t.Fatalf("/metrics lacks Keyturn's or Temporal's metrics: the scan would prove nothing:\n%.2000s", metricsText)
	}
	sweepMetrics, overdueBodies := canarySweep(t, env)
	if !regexp.MustCompile(`keyturn_revoke_gate_waits_total\{[^}]*held="true"[^}]*outcome="revoked_by_operator"`).MatchString(metricsText) {
		t.Fatalf("/metrics lacks the held gate's keyturn_revoke_gate_waits_total: the scan would prove nothing:\n%.3000s", metricsText)
	}
	otlpBodies := otlp.allBodies()
	if otlp.traceOf("StartWorkflow:Rotate") == nil {
		t.Fatal("the CLI exported no StartWorkflow span over OTLP: the scan would prove nothing")
	}
	places := map[string][]byte{
		"exported spans (worker)":                         []byte(spanText),
		"/metrics":                                        []byte(metricsText),
		"/metrics (secret sweep)":                         []byte(sweepMetrics),
		"secret_overdue notifications":                    overdueBodies,
		"/metrics (secret sweep, revoke held)":            []byte(heldSweepMetrics),
		"secret_overdue notifications (held)":             heldOverdueBodies,
		"OTLP exports (CLI)":                              otlpBodies,
		"describe (search attributes, summary)":           describe,
		"current details (UI)":                            []byte(details),
		"current details (UI, held)":                      []byte(held.details),
		"status query (held)":                             held.query,
		"webhook deliveries":                              webhookBodies,
		"keyturn agent logs":                              []byte(agent.onceOut + agentOut),
		"incident report (CLI)":                           []byte(incident.cli),
		"incident histories":                              incident.histories,
		"audit trail, audit show/verify, evidence bundle": canaryAuditOutputs(t, env, canaryIncidentID, id),
		"history (stored)":                                storedRaw,
		"history (protobuf)":                              raw,
		"history (json)":                                  js,
		"worker/server logs":                              []byte(env.Logs.String()),
		"CLI output":                                      []byte(cliOut.String()),
		"PostgreSQL log":                                  []byte(serverLog),
	}
	for what, value := range secrets {
		for where, data := range places {
			if what == "new password's verifier keys" && where == "PostgreSQL log" {
				continue // the server logs the verifier it is given: that is the design
			}
			if bytes.Contains(data, []byte(value)) {
				t.Errorf("the %s appears in the %s", what, where)
			}
		}
	}
	if len(h.GetEvents()) < 10 || env.Logs.String() == "" {
		t.Fatalf("nothing to scan: %d events, %d bytes of logs", len(h.GetEvents()), len(env.Logs.String()))
	}
	checkReplay(t, env, workflows.RotateWorkflowID(id), run.GetRunID(), "rotate_adopting_planted_version")
}

// tracedTelemetry sets up telemetry as the worker does, with its spans going to an
// in-memory exporter and its metrics to a registry served at the returned /metrics URL.
func tracedTelemetry(t *testing.T) (*telemetry.Telemetry, *tracetest.InMemoryExporter, string) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Registry: prometheus.NewRegistry(), SpanExporter: spans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	metrics, err := tel.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Close() })
	return tel, spans, "http://" + metrics.Addr + "/metrics"
}

// startTracedWorker starts the env's worker on a client of its own with tel, and every
// call to a target or store traced on tel's provider.
func startTracedWorker(t *testing.T, env *testenv.Env, tel *telemetry.Telemetry) {
	t.Helper()
	env.StartWorkerOn(t, env.DialWith(t, env.Server.Namespace(), tel), tel)
}

// scrapeText fetches a Prometheus endpoint's text as it is.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
