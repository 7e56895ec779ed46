package tests

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/pgsink"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// workerProcess runs `keyturn worker` as a separate process (this test binary re-executed
// as the CLI), so the test can kill it with SIGKILL.
// Extra flags (an audit sink, say) are appended.
func workerProcess(t *testing.T, env *testenv.Env, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"worker", "--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(),
		"-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile, "--log-level", "warn",
		"--audit-dir", env.AuditDir, "--audit-signing-key", env.AuditKey}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KEYTURN_TEST_AS_CLI=1")
	cmd.Stdout, cmd.Stderr = env.Logs, env.Logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd
}

// TestWorkerKilledMidCreate kills the worker with SIGKILL while Create is applying the new
// password on the target (held up by a lock the test owns), starts a new worker, and
// checks the rotation completes exactly once: one new version, made from the material the
// first attempt recorded, the old credential revoked, nothing orphaned. The workers keep
// the audit trail in the Postgres sink, as in production: it has every step once.
func TestWorkerKilledMidCreate(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	sinkFlag := usePostgresAuditSink(t, env)

	first := workerProcess(t, env, sinkFlag...)
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)

	// Hold a row lock on the inactive twin so the next Create blocks inside ALTER ROLE.
	_, release := lockInactiveTwin(t, env)

	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until Create has recorded the pending version: it is now blocked on our lock.
	var pending secret.Version
	waitFor(t, 30*time.Second, "the pending version to be staged", func() bool {
		v, _, err := env.Store.Read(ctx, id, secret.StagePending)
		pending = v
		return err == nil
	})
	time.Sleep(300 * time.Millisecond) // let the ALTER ROLE reach the lock
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	if err := release(); err != nil {
		t.Fatal(err)
	}

	finishWithNewWorker(t, env, run, sinkFlag...)

	// Exactly once: the version Create staged before the crash became current; no other
	// version was made.
	v2, m2 := current(t, env, id)
	if v2.Token != pending.Token || v2.Number != v1.Number+1 {
		t.Fatalf("current is version %d (%s); want the pre-crash pending version %d (%s)", v2.Number, v2.Token, pending.Number, pending.Token)
	}
	versions, err := env.Store.ListVersions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 {
		t.Fatalf("store holds %d versions, want 2 (current and previous): %v", len(versions), versions)
	}
	if err := login(ctx, env, "app_b", m2.Get("password")); err != nil {
		t.Fatalf("new credential does not log in: %v", err)
	}
	if err := login(ctx, env, "app_a", m1.Get("password")); err == nil {
		t.Fatal("old credential still logs in after the rotation")
	}

	// The history shows the crash: Create ran more than once.
	if attempts := maxAttempt(history(t, env, run.GetID(), run.GetRunID())); attempts < 2 {
		t.Fatalf("expected a retried activity after the kill, max attempt was %d", attempts)
	}
	checkReplay(t, env, run.GetID(), run.GetRunID(), "worker_killed_mid_create")

	// The audit trail has no gap and no duplicate: the killed attempt's start of Create
	// and the next attempt's are one event, and every step is recorded once. The worker
	// processes wrote it to Postgres; it verifies.
	counts, _ := runEvents(auditRecords(t, env), run.GetRunID())
	wantOnce(t, counts, "rotation.started", "create step.started", "create step.succeeded", "test step.started", "test step.succeeded",
		"promote step.started", "promote step.succeeded", "revoke step.started", "revoke step.succeeded", "rotation.finished")
	t.Logf("audit records of the run with a worker killed mid-create: %v", counts)
}

// finishWithNewWorker starts a new worker process (with extra flags) and waits for run,
// a rotation whose first worker was killed, to end rotated.
func finishWithNewWorker(t *testing.T, env *testenv.Env, run client.WorkflowRun, extra ...string) {
	t.Helper()
	workerProcess(t, env, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.RotateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("rotation did not complete after the worker restart: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated {
		t.Fatalf("outcome %s, want rotated", res.Outcome)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maxAttempt is the highest attempt of any activity in the history.
func maxAttempt(h *historypb.History) int {
	attempts := 0
	for _, e := range h.GetEvents() {
		if e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			attempts = max(attempts, int(e.GetActivityTaskStartedEventAttributes().GetAttempt()))
		}
	}
	return attempts
}

// usePostgresAuditSink installs the audit tables on the env's cluster, points env.Audit
// at them (for auditRecords) and returns the flags that make a worker process use them.
func usePostgresAuditSink(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	ctx := context.Background()
	dsn := env.Cluster.SuperDSN()
	if err := pgsink.Install(ctx, dsn, "", ""); err != nil {
		t.Fatal(err)
	}
	sink, err := pgsink.Open(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	env.Audit = &audit.Log{Sink: sink, Signer: env.Audit.Signer}
	return []string{"--audit-postgres", dsn}
}
