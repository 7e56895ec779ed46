package tests

// Replay fixtures for paths that end on an operator's decision or on a failure of the
// incident itself: a give-up sent to an outstanding revoke, an incident cancelled from the
// Web UI while its page's rotation runs, and an incident whose reason is too long for a
// schedule note (which once aborted it: see TestLongIncidentReasonStillPauses).
// Each test drives the path on the real servers (embedded Temporal, a throwaway
// PostgreSQL, the file store), asserts what an operator sees and what is true on the
// target, then replays the histories against today's code with checkReplay (recording
// them with KEYTURN_RECORD_HISTORIES=1; `make record-histories` runs these tests).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// TestGiveUpOnOutstandingRevokeTellsTheTruth: the admin password in the store is wrong,
// so a rotation cannot change the target and its rollback cannot revoke what it may have
// made: the revoke is outstanding (as in TestWrongAdminPasswordRollbackTellsTheTruth).
// This time the operator gives up instead of fixing the admin. The rotation ends failed
// with outcome revoke_failed, and says so everywhere (status, its JSON, visibility): the
// kept version is current and verified, the new one may still work on the target. The
// credential in use still works, no other twin can log in, and a second give-up or a
// retry-now is refused because nothing is outstanding any more.
func TestGiveUpOnOutstandingRevokeTellsTheTruth(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s"}}})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)
	// A wrong admin password: the target refuses every change the rotation tries.
	if _, err := env.Store.Put(ctx, "admin/e2e", secret.Material{"password": secret.NewSensitive("Not-The-Admin-Password-1")}, map[string]string{"username": "keyturn_admin"}); err != nil {
		t.Fatal(err)
	}

	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code == 0 || !strings.Contains(out, "revoke_outstanding") {
		t.Fatalf("rotate with a wrong admin password must say the revoke is outstanding; exit %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the revoke to be outstanding", func() bool {
		st := statusOf(t, env, id)
		return st.Status == "running" && st.Outcome == workflows.OutcomeRevokeOutstanding
	})
	// The status names the command that stops the retries.
	code, out = keyturn(t, env, "status", string(id))
	if code != 0 || !strings.Contains(out, "outstanding: revoke the new version") || !strings.Contains(out, "give-up e2e/app` stops") {
		t.Fatalf("status must show the outstanding revoke and how to give up; exit %d:\n%s", code, out)
	}
	runID := statusOf(t, env, id).RunID
	// The search attribute says running while the rollback's revoke is retried; the
	// status names the step from the rotation itself, and the CLI refuses an abort there.
	if st := statusOf(t, env, id); st.Step != workflows.StepRollback {
		t.Fatalf("status -o json during an outstanding rollback revoke says step %q, want %q", st.Step, workflows.StepRollback)
	}
	if code, out := keyturn(t, env, "abort", string(id)); code == 0 || !strings.Contains(out, "only applies before the previous version is revoked") {
		t.Fatalf("abort during an outstanding revoke must be refused; exit %d:\n%s", code, out)
	}

	// The operator gives up: the rotation ends now instead of retrying for days.
	code, out = keyturn(t, env, "give-up", string(id))
	if code != 0 || !strings.Contains(out, "sent give-up to the rotation of e2e/app") {
		t.Fatalf("give-up exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the rotation to end after give-up", func() bool { return statusOf(t, env, id).Status != "running" })
	st := statusOf(t, env, id)
	if st.RunID != runID || st.Status != "failed" || st.Outcome != workflows.OutcomeRevokeFailed || st.Step != workflows.OutcomeRevokeFailed {
		t.Fatalf("a rotation given up on must end failed with outcome revoke_failed: %+v", st)
	}
	code, out = keyturn(t, env, "status", string(id))
	for _, want := range []string{
		"revoke:   failed",
		"status:   revoke_failed, step revoke_failed",
		"outcome:  revoke_failed",
		fmt.Sprintf("kept:     version %d is current and was verified to work", v1.Number),
		"the new version could not be revoked and may still work on the target",
		"an operator gave up after", // 1 attempt, unless the 30 s retry timer fired first
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status after give-up lacks %q; exit %d:\n%s", want, code, out)
		}
	}
	if strings.Contains(out, "outstanding:") || strings.Contains(out, "retry-now e2e/app") {
		t.Errorf("status after give-up must not offer to retry what has ended:\n%s", out)
	}
	if n := visible(t, env, fmt.Sprintf("KeyturnSecretID = '%s' AND KeyturnOutcome = 'revoke_failed' AND ExecutionStatus = 'Failed'", id), 1); n != 1 {
		t.Errorf("visibility finds %d runs failed with revoke_failed, want 1", n)
	}
	desc, err := env.Client.DescribeWorkflowExecution(ctx, workflows.RotateWorkflowID(id), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
		t.Fatalf("the rotation given up on must be Failed in Temporal: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}

	// What the rotation said is true: the credential in use works and is still current,
	// and no other twin can log in (the rotation never got past the admin).
	requireKept(t, env, id, v1, m1)
	conn := superConn(t, env)
	defer conn.Close(ctx)
	var loginTwins int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname IN ('app_a', 'app_b') AND rolcanlogin").Scan(&loginTwins); err != nil {
		t.Fatal(err)
	}
	if loginTwins != 1 {
		t.Fatalf("exactly the twin in use may log in, found %d", loginTwins)
	}
	for _, cmd := range []string{"give-up", "retry-now"} {
		if code, out := keyturn(t, env, cmd, string(id)); code == 0 || !strings.Contains(out, "there is nothing to "+cmd) {
			t.Errorf("%s after the rotation ended must be refused; exit %d:\n%s", cmd, code, out)
		}
	}
	checkReplay(t, env, workflows.RotateWorkflowID(id), runID, "rollback_revoke_outstanding_given_up")
}

// TestIncidentCancelledWhileRotating: an operator cancels an incident (the Web UI's
// "Request cancellation") while its page's rotation is certainly running: the rotation's
// Create is blocked inside ALTER ROLE on a row lock the test holds, as in
// TestWorkerKilledMidCreate. (The revoke gate, which holds a rotation for as long as a
// session stays open, never applies to an incident's rotations: see rotateRun.gated.)
//
// The cancellation goes down the tree at once: incident, page, rotation. The rotation's
// Create stops and its rollback starts, which needs the same row and waits for the lock;
// the incident does not end before the rotation it started has ended, so `incident
// status` still shows it working. (A cancelled child workflow is waited for: on a real
// server the Go SDK settles a child's future only when the child closes, whatever
// ChildWorkflowOptions.WaitForCancellation says; the SDK's test environment does not.)
// Once the lock goes, the rollback finishes and everything ends: the incident Canceled
// with its report (the secret aborted), `incident start` and `incident status` say
// "cancelled" and exit non-zero, the rotation is cancelled with outcome aborted and the
// credential in use is current, verified and working; the half-made one cannot log in.
func TestIncidentCancelledWhileRotating(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	const id, inc = secret.ID("e2e/app"), "cancel-1"
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)

	// Hold a row lock on the inactive twin, so the incident's Create blocks in ALTER ROLE.
	blocker, release := lockInactiveTwin(t, env)
	probe := superConn(t, env)
	defer probe.Close(ctx)
	// blockedSince counts the backends waiting for the test's lock in a statement begun
	// after since (their statements are not read: they carry a password verifier).
	blockedSince := func(since time.Time) int {
		var n int
		if err := probe.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid)) AND query_start > $2",
			blocker.PgConn().PID(), since).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	blocked := func() int { return blockedSince(time.Time{}) }

	// The operator starts the incident from the CLI, which follows it until it ends.
	type result struct {
		code int
		out  string
	}
	started := make(chan result, 1)
	go func() {
		code, out := keyturn(t, env, "incident", "start", "--id", inc, "--select", "id="+string(id), "--mode", "rotate", "--reason", "cancel drill", "--yes", "--progress-every", "100ms")
		started <- result{code, out}
	}()
	waitFor(t, time.Minute, "the incident's Create to block on the lock", func() bool { return blocked() > 0 })
	if rot, err := queryRotation(ctx, env, id); err != nil || rot.Step != workflows.StepCreate {
		t.Fatalf("the incident's rotation must be in create: step %q, %v", rot.Step, err)
	}
	if code, out := keyturn(t, env, "incident", "status", inc); code != 0 || !strings.Contains(out, "[working] 0/1 done") {
		t.Fatalf("incident status while it runs exited %d:\n%s", code, out)
	}

	// Request cancellation, as the Web UI does.
	var cancelledAt time.Time
	if err := probe.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&cancelledAt); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.CancelWorkflow(ctx, workflows.IncidentWorkflowID(inc), ""); err != nil {
		t.Fatal(err)
	}
	// The rotation hears it: Create stops, the rollback starts and waits for the lock.
	waitFor(t, time.Minute, "the cancelled rotation to start its rollback", func() bool {
		rot, err := queryRotation(ctx, env, id)
		return err == nil && rot.Step == workflows.StepRollback
	})
	// A statement begun after the cancel: the rollback's, not the cancelled Create's.
	waitFor(t, 30*time.Second, "the rollback to wait for the lock", func() bool { return blockedSince(cancelledAt) > 0 })
	// Meanwhile the incident is still running: it waits for its rotation to end.
	desc, err := env.Client.DescribeWorkflowExecution(ctx, workflows.IncidentWorkflowID(inc), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("a cancelled incident must wait for the rotation it started to end; status %v, %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	select {
	case res := <-started:
		t.Fatalf("incident start returned while its rotation still rolls back; exit %d:\n%s", res.code, res.out)
	default:
	}
	if code, out := keyturn(t, env, "incident", "status", inc); code != 0 || !strings.Contains(out, "[working] 0/1 done") {
		t.Fatalf("incident status while its cancellation waits for the rotation exited %d:\n%s", code, out)
	}

	// The lock goes: the rollback finishes, then the page and the incident end.
	if err := release(); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-started:
	case <-time.After(2 * time.Minute):
		t.Fatal("incident start did not return after the incident was cancelled")
	}
	for _, want := range []string{"[done] 1/1 done: 0 contained, 0 rotated, 1 failed", "e2e/app  aborted", "NEEDS A HUMAN: 1 secret(s)", "keyturn: cancelled; 1 secret(s) need a human"} {
		if res.code == 0 || !strings.Contains(res.out, want) {
			t.Errorf("incident start of a cancelled incident must say %q and fail; exit %d:\n%s", want, res.code, res.out)
		}
	}
	err = env.Client.GetWorkflow(ctx, workflows.IncidentWorkflowID(inc), "").Get(ctx, nil)
	rep, ok := activities.DetailsOf[workflows.IncidentReport](err)
	if !temporal.IsCanceledError(err) || !ok {
		t.Fatalf("the incident must end cancelled with its report: %v (report %v)", err, ok)
	}
	if len(rep.Secrets) != 1 || rep.Secrets[0].ID != id || rep.Secrets[0].Outcome != workflows.OutcomeAborted || rep.Rotated != 0 || rep.Done != 1 {
		t.Fatalf("the report must name the secret aborted and nothing rotated: %+v %+v", rep.IncidentProgress, rep.Secrets)
	}
	desc, err = env.Client.DescribeWorkflowExecution(ctx, workflows.IncidentWorkflowID(inc), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("the incident must be Canceled in Temporal: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	code, out := keyturn(t, env, "incident", "status", inc)
	if code == 0 || !strings.Contains(out, "incident cancel-1 (rotate, scope id=e2e/app)") || !strings.Contains(out, "e2e/app  aborted") || !strings.HasSuffix(strings.TrimSpace(out), "keyturn: cancelled") {
		t.Fatalf("incident status of the cancelled incident exited %d:\n%s", code, out)
	}

	// The rotation ended as the report says: cancelled, aborted, the version in use kept.
	waitFor(t, time.Minute, "the cancelled rotation to end", func() bool { return statusOf(t, env, id).Status != "running" })
	if st := statusOf(t, env, id); st.Status != "cancelled" || st.Outcome != workflows.OutcomeAborted || st.Step != workflows.OutcomeAborted {
		t.Fatalf("the incident's rotation must end cancelled with outcome aborted: %+v", st)
	}
	code, out = keyturn(t, env, "status", string(id))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("kept:     version %d is current and was verified to work", v1.Number)) || !strings.Contains(out, "error:    cancelled") {
		t.Fatalf("status of the cancelled rotation exited %d:\n%s", code, out)
	}
	if n := visible(t, env, fmt.Sprintf("KeyturnIncidentID = '%s' AND KeyturnOutcome = 'aborted' AND ExecutionStatus = 'Canceled'", inc), 1); n != 1 {
		t.Errorf("visibility finds %d cancelled rotations of the incident, want 1", n)
	}
	requireKept(t, env, id, v1, m1)
	var loginTwins int
	if err := probe.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname IN ('app_a', 'app_b') AND rolcanlogin").Scan(&loginTwins); err != nil {
		t.Fatal(err)
	}
	if loginTwins != 1 {
		t.Fatalf("exactly the twin in use may log in after the rollback, found %d", loginTwins)
	}

	// The page has ended too; it hands its report to the incident as a result, so it
	// completes (the incident above is the one that ends Canceled). Its report is the
	// incident's.
	page := workflows.IncidentWorkflowID(inc) + "/page/1"
	var pageReports []workflows.SecretReport
	if err := env.Client.GetWorkflow(ctx, page, "").Get(ctx, &pageReports); err != nil {
		t.Fatalf("the page of the cancelled incident: %v", err)
	}
	if len(pageReports) != 1 || pageReports[0].Outcome != workflows.OutcomeAborted {
		t.Fatalf("the page must report the secret aborted: %+v", pageReports)
	}

	checkReplay(t, env, workflows.IncidentWorkflowID(inc), "", "incident_cancelled")
	checkReplay(t, env, page, "", "incident_page_cancelled")
	checkReplay(t, env, workflows.RotateWorkflowID(id), "", "rotate_cancelled_mid_create_by_incident")
}

// queryRotation asks the running rotation of id where it stands.
func queryRotation(ctx context.Context, env *testenv.Env, id secret.ID) (workflows.RotateStatus, error) {
	var st workflows.RotateStatus
	v, err := env.Client.QueryWorkflow(ctx, workflows.RotateWorkflowID(id), "", workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// TestLongIncidentReasonStillPauses: an operator pastes a whole ticket as the reason.
// The CLI refuses a reason over workflows.MaxReasonRunes and starts nothing. An incident
// started by another client (the Web UI, the API) with such a reason still pauses its
// schedules: the pause note is cut to the 1,000 bytes Temporal accepts. Before that cut,
// the server refused the note ("Schedule notes exceeds limit"), and in contain mode the
// incident aborted after revoking its scope and before issuing new credentials; the
// history of that abort, recorded then, is kept as incident_aborted_pause_failed.json and
// replays in workflows' TestReplayRecordedHistories.
func TestLongIncidentReasonStillPauses(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	env.Schedules = schedules.Pauser{Client: env.Client} // as `keyturn worker` pauses them
	env.StartWorker(t)
	ctx := context.Background()
	const id, inc = secret.ID("e2e/app"), "long-reason-1"
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)
	original, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	scheduleInventory(t, env, string(original), "@daily", "UTC")
	if code, out := keyturn(t, env, "apply", "--yes"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}

	reason := strings.Repeat("credential found in a public paste; ", 30) // 1,080 bytes
	code, out := keyturn(t, env, "incident", "start", "--id", inc, "--select", "id="+string(id), "--mode", "contain", "--reason", reason, "--yes")
	if code == 0 || !strings.Contains(out, "--reason is 1080 characters long") || strings.Contains(out, "public paste") {
		t.Fatalf("the CLI must refuse the long reason without repeating it; exit %d:\n%s", code, out)
	}
	if _, err := env.Client.DescribeWorkflowExecution(ctx, workflows.IncidentWorkflowID(inc), ""); err == nil {
		t.Fatal("a refused incident must start nothing")
	}
	if cur, _ := current(t, env, id); cur.Token != v1.Token {
		t.Fatal("a refused incident changed the secret")
	}

	// Another client starts it with the same reason.
	in := workflows.IncidentInput{IncidentID: inc, Selector: activities.Selector{IDs: []secret.ID{id}}, Mode: workflows.ModeContain, Reason: reason, Operator: "api-client"}
	r, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(inc), TaskQueue: worker.TaskQueue}, workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	var rep workflows.IncidentReport
	if err := r.Get(ctx, &rep); err != nil {
		t.Fatalf("the incident must succeed with a long reason: %v", err)
	}
	if rep.Total != 1 || rep.Contained != 1 || rep.Rotated != 1 || len(rep.Schedules.Paused) != 1 {
		t.Fatalf("the incident must contain, rotate and pause the secret's schedule: %+v %+v", rep.IncidentProgress, rep.Schedules)
	}
	st, err := schedules.Get(ctx, env.Client, schedules.CronScheduleID(id))
	if err != nil || !st.Paused || len(st.Note) > 1000 || !strings.HasPrefix(st.Note, "incident "+inc+" (api-client): credential found") || !strings.HasSuffix(st.Note, "…") {
		t.Fatalf("the schedule must be paused with the note cut to 1,000 bytes: paused %v, %d bytes, %v", st.Paused, len(st.Note), err)
	}
	if err := login(ctx, env, v1.Metadata["role"], m1.Get("password")); err == nil {
		t.Fatal("the contained credential must be refused")
	}
	v2, m2 := current(t, env, id)
	if v2.Number != v1.Number+1 {
		t.Fatalf("current is version %d, want the new version %d", v2.Number, v1.Number+1)
	}
	if err := login(ctx, env, v2.Metadata["role"], m2.Get("password")); err != nil {
		t.Fatalf("the new credential must work: %v", err)
	}
	// The schedule is resumed by the incident's note, cut as it was written.
	if code, out := keyturn(t, env, "schedules", "resume", "--incident", inc); code != 0 {
		t.Fatalf("resume --incident exited %d:\n%s", code, out)
	}
	if st, err := schedules.Get(ctx, env.Client, schedules.CronScheduleID(id)); err != nil || st.Paused {
		t.Fatalf("resume --incident must resume the schedule the incident paused: %+v, %v", st, err)
	}
}
