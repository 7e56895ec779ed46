package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

// mixedEnv is an installation with two Postgres roles and one secret of every other kind,
// all with IDs under e2e/.
func mixedEnv(t *testing.T) (*testenv.Env, []kindCase) {
	cases := []kindCase{localCACase(t), vaultPKICase(t), awsIAMCase(t), httpAPICase(t)}
	var extra strings.Builder
	back := binding.Backends{}
	for _, kc := range cases {
		extra.WriteString(kc.extra)
		if kc.back.Vault != nil {
			back.Vault = kc.back.Vault
		}
		if kc.back.AWS != nil {
			back.AWS = kc.back.AWS
		}
	}
	env := testenv.New(t, testenv.Options{
		Secrets: []demo.Secret{
			{ID: "e2e/app", Strategy: "alternating", Grace: "1h", TerminateSessions: true},
			{ID: "e2e/billing", Strategy: "alternating", Grace: "1h", Target: demo.Target{Role: "billing"}},
		},
		Extra:    extra.String(),
		Backends: back,
		Seed: func(ctx context.Context, store *file.Store) error {
			for _, kc := range cases {
				if kc.seed != nil {
					if err := kc.seed(ctx, store); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
	return env, cases
}

// TestIncidentContainsMixedScope: one incident in contain mode over Postgres roles, an IAM
// key, certificates from Vault PKI and the local CA, and an API key. Afterwards every
// credential that existed before is refused by its target and every new one works; a
// rotation that was in its grace period was stopped without bringing anything back.
func TestIncidentContainsMixedScope(t *testing.T) {
	env, cases := mixedEnv(t)
	ctx := context.Background()
	ids := []secret.ID{"e2e/app", "e2e/billing"}
	for _, kc := range cases {
		ids = append(ids, kc.id)
	}
	// Every secret gets a current version; e2e/app then starts a second rotation that
	// sits in its one-hour grace period, so its previous credential still works.
	for _, id := range ids {
		if code, out := keyturn(t, env, "rotate", string(id), "--wait", "--grace", "0s"); code != 0 {
			t.Fatalf("rotate %s exited %d:\n%s", id, code, out)
		}
	}
	appV1, appM1 := current(t, env, "e2e/app")
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions("e2e/app", "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: "e2e/app"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the e2e/app rotation to reach its grace period", func() bool {
		v, _ := current(t, env, "e2e/app")
		return v.Number == appV1.Number+1
	})
	appV2, appM2 := current(t, env, "e2e/app")
	if err := login(ctx, env, appV1.Metadata["role"], appM1.Get("password")); err != nil {
		t.Fatalf("during grace the previous credential must still work: %v", err)
	}

	before := map[secret.ID]struct {
		v secret.Version
		m secret.Material
	}{}
	for _, id := range ids {
		v, m := current(t, env, id)
		before[id] = struct {
			v secret.Version
			m secret.Material
		}{v, m}
	}

	code, out := keyturn(t, env, "incident", "start", "--id", "leak-1", "--select", "prefix=e2e/", "--mode", "contain",
		"--reason", "key pasted in a public channel", "--operator", "oncall", "--yes", "--progress-every", "100ms")
	if code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	for _, want := range []string{"6/6 done: 6 contained, 6 rotated, 0 failed", "every old credential refused after", "stopped a rotation in flight"} {
		if !strings.Contains(out, want) {
			t.Errorf("incident output lacks %q:\n%s", want, out)
		}
	}

	// The rotation in flight was terminated, not cancelled: no compensation ran.
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("the rotation in flight should have been terminated, got %v", err)
	}
	for _, id := range ids {
		v, m := current(t, env, id)
		if v.Number <= before[id].v.Number {
			t.Errorf("%s: current is still version %d after the incident", id, v.Number)
			continue
		}
		kc := caseOf(cases, id)
		if kc == nil { // Postgres
			if err := login(ctx, env, v.Metadata["role"], m.Get("password")); err != nil {
				t.Errorf("%s: the new credential does not log in: %v", id, err)
			}
			continue
		}
		kc.works(t, v, m)
		kc.refused(t, before[id].v, before[id].m)
	}
	for _, old := range []struct {
		role string
		pw   secret.Sensitive
	}{
		{appV1.Metadata["role"], appM1.Get("password")},
		{appV2.Metadata["role"], appM2.Get("password")},
		{before["e2e/billing"].v.Metadata["role"], before["e2e/billing"].m.Get("password")},
	} {
		err := login(ctx, env, old.role, old.pw)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) {
			t.Errorf("old credential of %s should be refused, got %v", old.role, err)
		}
	}

	// The report is there afterwards, and every run carries the incident's ID.
	code, out = keyturn(t, env, "incident", "status", "leak-1")
	if code != 0 || !strings.Contains(out, "key pasted in a public channel") || !strings.Contains(out, "oncall") {
		t.Errorf("incident status exited %d:\n%s", code, out)
	}
	waitFor(t, 20*time.Second, "every rotation of the incident to be listed by KeyturnIncidentID", func() bool {
		resp, err := env.Client.ListWorkflow(ctx, listRequest("KeyturnIncidentID = 'leak-1' AND WorkflowType = 'Rotate'"))
		return err == nil && len(resp.GetExecutions()) == len(ids)
	})
	checkMixedEvidence(t, env, "leak-1", ids)
}

// checkMixedEvidence builds the incident's evidence bundle from the trail the worker wrote
// and checks it is complete: the incident's start, containment and end with the operator
// and counts; for every secret in scope, its containment and its new version's create,
// test and promote, each once and by the incident; checkpoints and a clean verification.
func checkMixedEvidence(t *testing.T, env *testenv.Env, incident string, ids []secret.ID) {
	t.Helper()
	if err := env.Audit.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "evidence.tar.gz")
	if code, text := keyturn(t, env, "incident", "evidence", incident, "-o", out); code != 0 || !strings.Contains(text, "verification: OK") {
		t.Fatalf("incident evidence exited %d:\n%s", code, text)
	}
	files := untar(t, out, "incident-"+incident+"-evidence/")
	checkSums(t, files)
	if v := verification(t, files); !v.OK() || v.Trusted == 0 || v.Uncovered != 0 {
		t.Errorf("the bundle's verification: %+v", v)
	}
	if len(bytes.TrimSpace(files["checkpoints.jsonl"])) == 0 {
		t.Error("the bundle holds no checkpoint")
	}
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(files["records.jsonl"])), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("records.jsonl: %v", err)
		}
		if r.SecretID != "" && (r.Actor.Type != audit.ActorIncident || r.IncidentID != incident) {
			continue // a record of the secret from before, or not the incident's
		}
		key := fmt.Sprintf("%s %s %s", r.SecretID, r.Step, r.Event)
		if r.SecretID == "" {
			key = r.Event
			if r.Event == audit.EventIncidentStarted && (r.Actor.Name != "oncall" || r.Counts["secrets"] != len(ids)) {
				t.Errorf("incident.started: actor %s, %d secrets; want oncall and %d", r.Actor, r.Counts["secrets"], len(ids))
			}
		}
		counts[key]++
	}
	want := []string{audit.EventIncidentStarted, audit.EventIncidentContained, audit.EventIncidentFinished}
	for _, id := range ids {
		for _, step := range []string{"contain", "create", "test", "promote"} {
			want = append(want, fmt.Sprintf("%s %s %s", id, step, audit.EventStepSucceeded))
		}
	}
	for _, k := range want {
		if counts[k] != 1 {
			t.Errorf("the evidence holds %q %d times, want once", k, counts[k])
		}
	}
	t.Logf("evidence of incident %s: %d distinct events of the incident, %d files", incident, len(counts), len(files))
}

func caseOf(cases []kindCase, id secret.ID) *kindCase {
	for i := range cases {
		if cases[i].id == id {
			return &cases[i]
		}
	}
	return nil
}

// TestIncidentDryRunAndEmptyScope: a dry run shows the plan and changes nothing; a scope
// that matches nothing says so and exits non-zero; an unknown ID is refused.
func TestIncidentDryRunAndEmptyScope(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	v, _ := current(t, env, "e2e/app")

	code, out := keyturn(t, env, "incident", "start", "--id", "drill", "--select", "tag=demo", "--reason", "drill", "--dry-run")
	if code != 0 || !strings.Contains(out, "e2e/app") || !strings.Contains(out, "dry run: nothing was started or changed") || !strings.Contains(out, "revoke every existing version") {
		t.Fatalf("dry run exited %d:\n%s", code, out)
	}
	if after, _ := current(t, env, "e2e/app"); after.Token != v.Token {
		t.Fatalf("the dry run changed the current version from %d to %d", v.Number, after.Number)
	}
	resp, err := env.Client.ListWorkflow(context.Background(), listRequest("WorkflowType = 'Rotate'"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetExecutions()); n != 1 {
		t.Fatalf("%d rotations after the dry run, want only the first one", n)
	}

	code, out = keyturn(t, env, "incident", "start", "--select", "tag=nothing-has-this", "--reason", "drill", "--yes")
	if code == 0 || !strings.Contains(out, "matches no secret") {
		t.Fatalf("an empty scope exited %d, want non-zero with a clear message:\n%s", code, out)
	}
	code, out = keyturn(t, env, "incident", "start", "--select", "id=e2e/nope", "--reason", "drill", "--yes")
	if code == 0 || !strings.Contains(out, `"e2e/nope" not in the inventory`) {
		t.Fatalf("an unknown ID exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "incident", "start", "--reason", "drill", "--yes")
	if code == 0 || !strings.Contains(out, "--select is required") {
		t.Fatalf("no selector exited %d:\n%s", code, out)
	}
	if after, _ := current(t, env, "e2e/app"); after.Token != v.Token {
		t.Fatal("a refused incident changed the secret")
	}
}

func listRequest(query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Query: query}
}

// TestIncidentSurvivesWorkerKill: the worker process is killed with SIGKILL while an
// incident is half done; a new worker picks it up and it finishes: every secret contained
// and rotated once, every old credential refused, every new one working.
func TestIncidentSurvivesWorkerKill(t *testing.T) {
	var secrets []demo.Secret
	for i := range 12 {
		role := fmt.Sprintf("svc%02d", i)
		secrets = append(secrets, demo.Secret{ID: secret.ID("e2e/" + role), Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: role}})
	}
	env := testenv.New(t, testenv.Options{Secrets: secrets, NoWorker: true})
	ctx := context.Background()
	first := workerProcess(t, env)
	before := map[secret.ID]secret.Material{}
	roles := map[secret.ID]string{}
	for _, s := range secrets {
		if code, out := keyturn(t, env, "rotate", string(s.ID), "--wait"); code != 0 {
			t.Fatalf("rotate %s exited %d:\n%s", s.ID, code, out)
		}
		v, m := current(t, env, s.ID)
		before[s.ID], roles[s.ID] = m, v.Metadata["role"]
	}

	in := workflows.IncidentInput{IncidentID: "kill-1", Selector: activities.Selector{Prefix: "e2e/"}, Mode: workflows.ModeContain,
		Reason: "worker kill drill", Operator: "test", Parallelism: 1}
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(in.IncidentID), TaskQueue: workflows.TaskQueue}, workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the incident to finish a few secrets", func() bool {
		val, err := env.Client.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryProgress)
		var p workflows.IncidentProgress
		return err == nil && val.Get(&p) == nil && p.Done >= 3
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	workerProcess(t, env)

	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var rep workflows.IncidentReport
	if err := run.Get(waitCtx, &rep); err != nil {
		t.Fatalf("the incident did not finish after the worker restart: %v", err)
	}
	if rep.Done != len(secrets) || rep.Contained != len(secrets) || rep.Rotated != len(secrets) || rep.Failed != 0 {
		t.Fatalf("report %+v, want all %d contained and rotated", rep.IncidentProgress, len(secrets))
	}
	for _, s := range secrets {
		v, m := current(t, env, s.ID)
		if err := login(ctx, env, v.Metadata["role"], m.Get("password")); err != nil {
			t.Errorf("%s: the new credential does not log in: %v", s.ID, err)
		}
		if err := login(ctx, env, roles[s.ID], before[s.ID].Get("password")); err == nil {
			t.Errorf("%s: the old credential still logs in", s.ID)
		}
		versions, err := env.Store.ListVersions(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) > 3 {
			t.Errorf("%s: %d versions after one rotation and one incident; a secret was rotated twice", s.ID, len(versions))
		}
	}
}

// TestIncidentSupersedesScheduledRotation: a scheduled rotation is in its grace period
// when an incident contains the same secret. The incident pauses the schedule with its
// note, terminates the scheduled rotation (no compensation, so nothing is re-promoted),
// revokes both earlier credentials and issues a new one; the scheduled run ends without
// starting another rotation.
func TestIncidentSupersedesScheduledRotation(t *testing.T) {
	env := testenv.New(t, testenv.Options{
		Secrets:  []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "1h"}},
		NoWorker: true,
	})
	env.Schedules = schedules.Pauser{Client: env.Client}
	env.StartWorker(t)
	ctx := context.Background()
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait", "--grace", "0s"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, "e2e/app")

	original, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	scheduleInventory(t, env, string(original), "@daily", "UTC")
	if code, out := keyturn(t, env, "apply", "--yes"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	handle := env.Client.ScheduleClient().GetHandle(ctx, schedules.CronScheduleID("e2e/app"))
	if err := handle.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the scheduled rotation to promote and enter its grace period", func() bool {
		v, _ := current(t, env, "e2e/app")
		return v.Number == v1.Number+1
	})
	v2, m2 := current(t, env, "e2e/app")

	code, out := keyturn(t, env, "incident", "start", "--id", "race-1", "--select", "id=e2e/app", "--mode", "contain", "--reason", "race drill", "--yes")
	if code != 0 || !strings.Contains(out, "stopped a rotation in flight") || !strings.Contains(out, "1/1 done: 1 contained, 1 rotated, 0 failed") {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	desc, err := handle.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !desc.Schedule.State.Paused || !strings.Contains(desc.Schedule.State.Note, "incident race-1") {
		t.Errorf("schedule state %+v, want paused with the incident's note", desc.Schedule.State)
	}
	// The scheduled run ended with its terminated rotation and started nothing else.
	waitFor(t, 30*time.Second, "the scheduled run to end", func() bool {
		resp, err := env.Client.ListWorkflow(ctx, listRequest("WorkflowType = 'ScheduledRotate' AND ExecutionStatus = 'Running'"))
		return err == nil && len(resp.GetExecutions()) == 0
	})
	v3, m3 := current(t, env, "e2e/app")
	if v3.Number != v2.Number+1 {
		t.Fatalf("current is version %d, want the incident's version %d", v3.Number, v2.Number+1)
	}
	if err := login(ctx, env, v3.Metadata["role"], m3.Get("password")); err != nil {
		t.Fatalf("the incident's credential does not log in: %v", err)
	}
	for _, old := range []struct {
		v secret.Version
		m secret.Material
	}{{v1, m1}, {v2, m2}} {
		if err := login(ctx, env, old.v.Metadata["role"], old.m.Get("password")); err == nil {
			t.Errorf("version %d still logs in after the incident", old.v.Number)
		}
	}
}
