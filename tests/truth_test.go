package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// statusJSON is the documented JSON of `keyturn status <id> -o json` (docs/status.md).
type statusJSON struct {
	SecretID        string     `json:"secretId"`
	Status          string     `json:"status"`
	Outcome         string     `json:"outcome"`
	Step            string     `json:"step"`
	Started         time.Time  `json:"started"`
	Closed          *time.Time `json:"closed"`
	DurationSeconds float64    `json:"durationSeconds"`
	RunID           string     `json:"runId"`
	Steps           []struct {
		Step            string  `json:"step"`
		DurationSeconds float64 `json:"durationSeconds"`
	} `json:"steps"`
}

func statusOf(t *testing.T, env *testenv.Env, id secret.ID) statusJSON {
	t.Helper()
	code, out := keyturn(t, env, "status", string(id), "-o", "json")
	var st statusJSON
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -o json exited %d:\n%s", code, out)
	}
	return st
}

// visible lists the workflows a visibility query finds, waiting for the index to catch up
// with want (visibility is eventually consistent).
func visible(t *testing.T, env *testenv.Env, query string, want int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := env.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list %q: %v", query, err)
		}
		n := len(resp.GetExecutions())
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCLINeverReportsASuccessItDidNotGet: a second `rotate` of a running rotation starts
// nothing and says what is running (a new --grace is not silently dropped); --attach
// follows the running one; an unknown ID starts nothing; an aborted rotation ends
// Canceled with outcome aborted, found by the README's queries; status -o json has real
// start times and durations in seconds.
func TestCLINeverReportsASuccessItDidNotGet(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "1h"}}})
	const id = secret.ID("e2e/app")

	// A first rotation has nothing to revoke, so it does not wait out the hour of grace.
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 || !strings.Contains(out, "outcome:  rotated") {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	if st := statusOf(t, env, id); st.DurationSeconds > 60 {
		t.Fatalf("a first rotation must not wait out its grace period: took %.0fs", st.DurationSeconds)
	}

	code, out := keyturn(t, env, "rotate", string(id))
	if code != 0 || !strings.Contains(out, "started rotation of e2e/app") {
		t.Fatalf("second rotation exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the rotation to reach its grace period", func() bool { return statusOf(t, env, id).Step == "grace" })
	running := statusOf(t, env, id)

	code, out = keyturn(t, env, "rotate", string(id), "--grace", "0s")
	if code == 0 || strings.Contains(out, "started rotation") || !strings.Contains(out, "already running") ||
		!strings.Contains(out, running.RunID) || !strings.Contains(out, "step grace") || !strings.Contains(out, "nothing was started") {
		t.Fatalf("rotate of a running rotation must fail and name the run; exit %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "rotate", string(id), "--attach", "--grace", "0s")
	if code != 0 || !strings.Contains(out, "attached to the rotation of e2e/app already running") || !strings.Contains(out, "do not apply") {
		t.Fatalf("rotate --attach exited %d:\n%s", code, out)
	}

	// Abort: the previous version is current again, and the run does not look like a success.
	if code, out := keyturn(t, env, "abort", string(id)); code != 0 {
		t.Fatalf("abort exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the aborted rotation to end", func() bool { return statusOf(t, env, id).Status != "running" })
	st := statusOf(t, env, id)
	if st.Status != "cancelled" || st.Outcome != "aborted" || st.Step != "aborted" {
		t.Fatalf("an aborted rotation must end cancelled with outcome aborted: %+v", st)
	}
	if st.Started.Year() < 2000 || st.Closed == nil || st.DurationSeconds <= 0 || st.DurationSeconds > 600 {
		t.Fatalf("status -o json must carry real times and durations in seconds: %+v", st)
	}
	for _, s := range st.Steps {
		if s.DurationSeconds < 0 || s.DurationSeconds > 600 {
			t.Fatalf("step durations must be in seconds: %+v", st.Steps)
		}
	}
	code, out = keyturn(t, env, "status")
	if code != 0 || !strings.Contains(out, "aborted") || !strings.Contains(out, "OUTCOME") {
		t.Fatalf("status must show the abort:\n%s", out)
	}
	for query, want := range map[string]int{
		fmt.Sprintf("KeyturnSecretID = '%s' AND KeyturnOutcome = 'aborted'", id):                                    1,
		fmt.Sprintf("KeyturnSecretID = '%s' AND KeyturnOutcome IN ('rolled_back', 'aborted')", id):                  1,
		fmt.Sprintf("KeyturnSecretID = '%s' AND KeyturnOutcome = 'rotated'", id):                                    1,
		fmt.Sprintf("KeyturnSecretID = '%s' AND ExecutionStatus = 'Completed' AND KeyturnOutcome != 'rotated'", id): 0,
	} {
		if got := visible(t, env, query, want); got != want {
			t.Fatalf("query %q found %d runs, want %d", query, got, want)
		}
	}
	desc, err := env.Client.DescribeWorkflowExecution(context.Background(), "rotate/"+string(id), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("the aborted run must be Canceled in Temporal: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	checkReplay(t, env, "rotate/"+string(id), "", "aborted_in_grace")

	// An unknown ID starts nothing.
	code, out = keyturn(t, env, "rotate", "e2e/typo")
	if code == 0 || !strings.Contains(out, `"e2e/typo" is not in inventory`) {
		t.Fatalf("rotate of an unknown ID exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "status", "e2e/typo")
	if code == 0 || !strings.Contains(out, `"e2e/typo" is not in inventory`) || strings.Contains(out, "start one with") {
		t.Fatalf("status of an unknown ID must say it is not in the inventory, not offer to rotate it; exit %d:\n%s", code, out)
	}
	if n := visible(t, env, "WorkflowId = 'rotate/e2e/typo'", 0); n != 0 {
		t.Fatalf("rotate of an unknown ID left %d workflow(s)", n)
	}
}

// TestWrongAdminPasswordRollbackTellsTheTruth: the admin password in the store is wrong, so
// the rotation cannot change the target and its rollback cannot revoke what it may have
// made. The rollback still tests the credential consumers use, says it works (it does),
// and keeps trying the revoke; once the admin password is right again, it finishes.
func TestWrongAdminPasswordRollbackTellsTheTruth(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s"}}})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)
	_, admin, err := env.Store.Read(ctx, "admin/e2e", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Put(ctx, "admin/e2e", secret.Material{"password": secret.NewSensitive("Not-The-Admin-Password-1")}, map[string]string{"username": "keyturn_admin"}); err != nil {
		t.Fatal(err)
	}

	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code == 0 || strings.Contains(out, "rollback failed") || !strings.Contains(out, "revoke_outstanding") || !strings.Contains(out, "retry-now") {
		t.Fatalf("rotate with a wrong admin password must say the revoke is outstanding; exit %d:\n%s", code, out)
	}
	st := statusOf(t, env, id)
	if st.Status != "running" || st.Outcome != "revoke_outstanding" {
		t.Fatalf("the rotation must keep trying the revoke: %+v", st)
	}
	code, out = keyturn(t, env, "status", string(id))
	if code != 0 || !strings.Contains(out, "outstanding: revoke the new version") || !strings.Contains(out, "revoke_outstanding") ||
		!strings.Contains(out, fmt.Sprintf("kept:     version %d is current and was verified to work", v1.Number)) {
		t.Fatalf("status must show the outstanding revoke:\n%s", out)
	}
	if err := login(ctx, env, v1.Metadata["role"], m1.Get("password")); err != nil {
		t.Fatalf("the credential in use must still work: %v", err)
	}
	if cur, _ := current(t, env, id); cur.Token != v1.Token {
		t.Fatalf("version %d must still be current", v1.Number)
	}

	// The operator fixes the admin password and retries at once.
	if _, err := env.Store.Put(ctx, "admin/e2e", admin, map[string]string{"username": "keyturn_admin"}); err != nil {
		t.Fatal(err)
	}
	if code, out := keyturn(t, env, "retry-now", string(id)); code != 0 {
		t.Fatalf("retry-now exited %d:\n%s", code, out)
	}
	waitFor(t, 2*time.Minute, "the rollback to finish", func() bool { return statusOf(t, env, id).Status != "running" })
	st = statusOf(t, env, id)
	if st.Outcome != "rolled_back" {
		t.Fatalf("once the admin works the rollback must finish: %+v", st)
	}
	checkReplay(t, env, "rotate/"+string(id), "", "rollback_revoke_outstanding_then_retried")
	if code, out := keyturn(t, env, "retry-now", string(id)); code == 0 || !strings.Contains(out, "nothing to retry-now") {
		t.Fatalf("retry-now with nothing outstanding must be refused; exit %d:\n%s", code, out)
	}
	if err := login(ctx, env, v1.Metadata["role"], m1.Get("password")); err != nil {
		t.Fatalf("the credential in use must still work: %v", err)
	}
	var loginTwins int
	conn := superConn(t, env)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname IN ('app_a', 'app_b') AND rolcanlogin").Scan(&loginTwins); err != nil {
		t.Fatal(err)
	}
	if loginTwins != 1 {
		t.Fatalf("exactly the twin in use may log in after the rollback, found %d", loginTwins)
	}
}
