package tests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// countWorkflows counts the executions visibility lists for query, waiting out its lag
// until want shows up or a few seconds pass.
func countWorkflows(t *testing.T, env *testenv.Env, query string, want int) int {
	t.Helper()
	n := -1
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := env.Client.ListWorkflow(context.Background(), listRequest(query))
		if err != nil {
			t.Fatal(err)
		}
		n = len(resp.GetExecutions())
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIncidentIDUsedOnce: the SDK's ExecuteWorkflow answers a taken ID with the existing
// run unless WorkflowExecutionErrorWhenAlreadyStarted is set, for a running and for a
// closed workflow alike (checked here on the real server). `incident start` on the ID of
// a running incident reports it (run ID, since when, what it is doing) and exits non-zero,
// --attach follows it, and the ID of an ended incident is refused: nothing new starts.
func TestIncidentIDUsedOnce(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	ctx := context.Background()
	in := workflows.IncidentInput{IncidentID: "busy", Selector: activities.Selector{IDs: []secret.ID{"e2e/app"}}, Mode: workflows.ModeRotate, Reason: "drill", Operator: "test"}
	// The ID policies the CLI sets; what decides is WorkflowExecutionErrorWhenAlreadyStarted.
	opts := client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID("busy"), TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL}
	first, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	// No worker yet: the incident stays running.
	sdkAnswers := func(state string) {
		t.Helper()
		again, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.IncidentWorkflowName, in)
		if err != nil || again.GetRunID() != first.GetRunID() {
			t.Errorf("%s: without the option the SDK should return the existing run, as if started, %s, got %v, %v", state, first.GetRunID(), again, err)
		}
		strict := opts
		strict.WorkflowExecutionErrorWhenAlreadyStarted = true
		if _, err := env.Client.ExecuteWorkflow(ctx, strict, workflows.IncidentWorkflowName, in); !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			t.Errorf("%s: with WorkflowExecutionErrorWhenAlreadyStarted the SDK should fail with already-started, got %v", state, err)
		}
	}
	sdkAnswers("running")

	code, out := keyturn(t, env, "incident", "start", "--id", "busy", "--select", "id=e2e/app", "--mode", "rotate", "--reason", "again", "--yes")
	if code == 0 || !strings.Contains(out, "incident busy is running already (run "+first.GetRunID()+", since ") ||
		!strings.Contains(out, "nothing new was started") || !strings.Contains(out, "--attach") {
		t.Fatalf("start on a running incident exited %d:\n%s", code, out)
	}

	env.StartWorker(t)
	code, out = keyturn(t, env, "incident", "start", "--id", "busy", "--select", "id=e2e/app", "--mode", "rotate", "--reason", "again", "--yes", "--attach", "--progress-every", "100ms")
	if code != 0 || !strings.Contains(out, "following it") || !strings.Contains(out, "1/1 done") {
		t.Fatalf("--attach exited %d:\n%s", code, out)
	}
	if err := first.Get(ctx, nil); err != nil {
		t.Fatalf("the incident failed: %v", err)
	}
	sdkAnswers("closed")

	code, out = keyturn(t, env, "incident", "start", "--id", "busy", "--select", "id=e2e/app", "--mode", "rotate", "--reason", "again", "--yes", "--attach")
	if code == 0 || !strings.Contains(out, "incident ID busy was used already") || !strings.Contains(out, "ended completed") || strings.Contains(out, "1/1 done") {
		t.Fatalf("start on an ended incident's ID exited %d:\n%s", code, out)
	}
	if n := countWorkflows(t, env, "WorkflowId = 'incident/busy'", 1); n != 1 {
		t.Fatalf("%d runs of incident/busy, want the one", n)
	}
}

// TestIncidentPlannedByCLI: dry runs, unknown IDs and empty scopes start no workflow at
// all, since the CLI plans from the inventory; two default incident IDs made in the same
// second differ; when the worker's inventory resolves another scope than the plan shown,
// the CLI says which secrets differ and exits non-zero; and a secret the incident could
// not rotate is named with what to do, with exit status 1.
func TestIncidentPlannedByCLI(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{
		{ID: "e2e/app", Strategy: "alternating", Grace: "0s"},
		// Its admin password is an environment variable the worker does not have.
		{ID: "bad/broken", Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "broken"}, AdminPassword: "env:KEYTURN_TEST_UNSET_ADMIN"},
	}})
	for _, args := range [][]string{
		{"--select", "tag=demo", "--reason", "drill", "--dry-run"},
		{"--select", "tag=demo", "--reason", "drill", "--dry-run"},
		{"--select", "id=e2e/nope", "--reason", "drill", "--yes"},
		{"--select", "tag=nothing-has-this", "--reason", "drill", "--yes"},
	} {
		keyturn(t, env, append([]string{"incident", "start"}, args...)...)
	}
	if n := countWorkflows(t, env, "WorkflowType = 'Incident'", 0); n != 0 {
		t.Fatalf("%d incident workflows after dry runs and refused scopes, want none", n)
	}

	idRE := regexp.MustCompile(`incident (inc-\d{8}-\d{6}-[a-z2-9]{6}), mode`)
	seen := map[string]bool{}
	for range 3 {
		code, out := keyturn(t, env, "incident", "start", "--select", "tag=demo", "--reason", "drill", "--dry-run")
		m := idRE.FindStringSubmatch(out)
		if code != 0 || m == nil || !strings.Contains(out, "nothing was started") {
			t.Fatalf("dry run exited %d, want a default ID inc-<time>-<suffix>:\n%s", code, out)
		}
		if seen[m[1]] {
			t.Fatalf("default incident ID %s given twice", m[1])
		}
		seen[m[1]] = true
	}

	// The CLI's inventory has a secret the worker's does not.
	original, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	extra := demo.Inventory([]demo.Secret{{ID: "e2e/extra", Strategy: "alternating", Grace: "0s",
		Target: demo.Target{Host: env.Cluster.Host, Port: env.Cluster.Port, Database: "demo", Role: "extra", Admin: "keyturn_admin", AdminRef: "admin/e2e"}}})
	mine := filepath.Join(t.TempDir(), "mine.yaml")
	body := string(original) + extra[strings.Index(extra, "secrets:\n")+len("secrets:\n"):]
	if err := os.WriteFile(mine, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := keyturn(t, env, "-f", mine, "incident", "start", "--id", "differs", "--select", "prefix=e2e/", "--mode", "rotate", "--reason", "drill", "--yes", "--progress-every", "100ms")
	if code == 0 || !strings.Contains(out, "scope prefix=e2e/: 2 secret(s)") || !strings.Contains(out, "1/1 done") ||
		!strings.Contains(out, "the plan shown had e2e/extra, which the worker's inventory does not put in scope; the incident does NOT touch them") {
		t.Fatalf("an incident whose worker resolves another scope exited %d:\n%s", code, out)
	}

	code, out = keyturn(t, env, "incident", "start", "--id", "broken", "--select", "id=bad/broken", "--mode", "rotate", "--reason", "drill", "--yes", "--progress-every", "100ms")
	if code == 0 || !strings.Contains(out, "NEEDS A HUMAN: 1 secret(s)") || !strings.Contains(out, "  bad/broken (failed): the rotation did not finish") ||
		!strings.Contains(out, "incident start --select id=bad/broken") {
		t.Fatalf("an incident whose secret failed exited %d:\n%s", code, out)
	}
}
