package schedules_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/schedsource"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

const app = secret.ID("e2e/app")

// applyEnv gives the env's inventory the schedules and applies them.
func applyEnv(t *testing.T, env *testenv.Env, specs map[secret.ID]string) {
	t.Helper()
	inv := *env.Inventory
	inv.Secrets = slices.Clone(inv.Secrets)
	for i := range inv.Secrets {
		if spec, ok := specs[inv.Secrets[i].ID]; ok {
			inv.Secrets[i].Schedule = spec
		}
	}
	ctx := context.Background()
	plan, err := schedules.Plan(ctx, env.Client, env.Server.Namespace(), schedsource.From(&inv))
	if err != nil {
		t.Fatal(err)
	}
	if err := schedules.Apply(ctx, env.Client, env.Server.Namespace(), plan); err != nil {
		t.Fatal(err)
	}
}

// trigger starts a run of the schedule now and returns the run's result once it ended.
// It waits for the schedule's action count to pass what it was, since Temporal takes
// the action asynchronously.
func trigger(t *testing.T, env *testenv.Env, scheduleID string) (workflows.ScheduledResult, schedules.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := schedules.Get(ctx, env.Client, scheduleID)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.ScheduleClient().GetHandle(ctx, scheduleID).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var st schedules.Status
	eventually(t, func() bool {
		st, err = schedules.Get(ctx, env.Client, scheduleID)
		return err == nil && st.Actions > before.Actions && st.LastRun != nil && st.LastRun.RunID != ""
	}, "%s to start a run", scheduleID)
	var res workflows.ScheduledResult
	runErr := env.Client.GetWorkflow(ctx, st.LastRun.WorkflowID, st.LastRun.RunID).Get(ctx, &res)
	st, err = schedules.Get(ctx, env.Client, scheduleID)
	if err != nil {
		t.Fatal(err)
	}
	replay(t, env, st.LastRun.WorkflowID, st.LastRun.RunID)
	return res, st, runErr
}

// replay replays the run's history, as the real server recorded it, against the workflow
// code: Scheduled must issue the same commands again, or it is not deterministic.
func replay(t *testing.T, env *testenv.Env, workflowID, runID string) {
	t.Helper()
	ctx := context.Background()
	h := &historypb.History{}
	for it := env.Client.GetWorkflowHistory(ctx, workflowID, runID, false, 0); it.HasNext(); {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("read history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	err := proxy.VisitPayloads(ctx, h, proxy.VisitPayloadsOptions{
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return env.Codec.Decode(p)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r)
	quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.ReplayWorkflowHistory(quiet, h); err != nil {
		t.Fatalf("replay of %s (%d events): %v", workflowID, len(h.Events), err)
	}
}

// TestScheduleTriggerRunsARealRotation: a triggered schedule rotates a real Postgres role
// through rotate/<secret-id>, as a child of the scheduled run.
func TestScheduleTriggerRunsARealRotation(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	applyEnv(t, env, map[secret.ID]string{app: "0 3 * * 1"})

	res, st, err := trigger(t, env, schedules.CronScheduleID(app))
	if err != nil {
		t.Fatalf("scheduled run failed: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated || res.RotateWorkflowID != "rotate/e2e/app" || res.RotateRunID == "" {
		t.Fatalf("scheduled run: %+v", res)
	}
	if st.LastRun.Status != "completed" || st.LastRun.Outcome != workflows.OutcomeRotated {
		t.Errorf("the schedule's last run reads %+v", st.LastRun)
	}

	var rotated workflows.RotateResult
	if err := env.Client.GetWorkflow(ctx, res.RotateWorkflowID, res.RotateRunID).Get(ctx, &rotated); err != nil || rotated.Outcome != workflows.OutcomeRotated {
		t.Fatalf("rotation %s: %+v %v", res.RotateRunID, rotated, err)
	}
	cur, _, err := env.Store.Read(ctx, app, secret.StageCurrent)
	if err != nil || cur.Token != secret.VersionToken("rotate/e2e/app/"+res.RotateRunID) {
		t.Fatalf("the store's current version %q must be the scheduled rotation's (%v)", cur.Token, err)
	}
	in := rotateInput(t, env, res.RotateWorkflowID, res.RotateRunID)
	if in.Reason != workflows.ReasonScheduled || !strings.HasPrefix(in.RequestedBy, "schedule keyturn/e2e/app") {
		t.Errorf("the rotation's input records %+v", in)
	}
	// The schedule's action set the run's secret and first step, so the run sent one
	// update of its own: the outcome.
	requireScheduledAttributes(t, env, app, st.LastRun.WorkflowID, st.LastRun.RunID, workflows.OutcomeRotated, 1)
}

// requireScheduledAttributes checks a scheduled run's search attributes as the server
// holds them (its secret and its last step) and how many updates the run sent.
func requireScheduledAttributes(t *testing.T, env *testenv.Env, id secret.ID, workflowID, runID, step string, updates int) {
	t.Helper()
	ctx := context.Background()
	desc, err := env.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		t.Fatal(err)
	}
	fields := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for name, want := range map[string]string{workflows.SearchAttrSecretID.GetName(): string(id), workflows.SearchAttrStep.GetName(): step} {
		var got string
		if p := fields[name]; p == nil || converter.GetDefaultDataConverter().FromPayload(p, &got) != nil || got != want {
			t.Errorf("scheduled run %s: search attribute %s reads %q, want %q", workflowID, name, got, want)
		}
	}
	if n := countEvents(t, env, workflowID, runID, enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES); n != updates {
		t.Errorf("scheduled run %s sent %d search attribute updates, want %d", workflowID, n, updates)
	}
}

// TestScheduleTriggerWhileRotatingIsSkipped: a scheduled run that finds a rotation of its
// secret running (here one started by hand, in a long grace period) starts none, says
// so, and leaves the running rotation alone.
func TestScheduleTriggerWhileRotatingIsSkipped(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	applyEnv(t, env, map[secret.ID]string{app: "0 3 * * 1"})

	// A first rotation has nothing to revoke and skips its grace period: make one first,
	// so the rotation by hand below has a previous version and waits in its grace.
	zero := time.Duration(0)
	first, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(app, "postgres"), workflows.RotateWorkflowName,
		workflows.RotateInput{SecretID: app, Grace: &zero, Reason: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Get(ctx, nil); err != nil {
		t.Fatalf("first rotation: %v", err)
	}

	grace := time.Hour
	running, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(app, "postgres"), workflows.RotateWorkflowName,
		workflows.RotateInput{SecretID: app, Grace: &grace, Reason: "by hand"})
	if err != nil {
		t.Fatal(err)
	}
	inGrace := func() bool {
		v, err := env.Client.QueryWorkflow(ctx, running.GetID(), running.GetRunID(), workflows.QueryStatus)
		var status workflows.RotateStatus
		return err == nil && v.Get(&status) == nil && status.Step == workflows.StepGrace
	}
	eventually(t, inGrace, "the manual rotation to reach its grace period")

	res, st, err := trigger(t, env, schedules.CronScheduleID(app))
	if err != nil {
		t.Fatalf("a skipped run is not a failure: %v", err)
	}
	if res.Outcome != workflows.ScheduledSkipped || res.RotateRunID != "" || !strings.Contains(res.Reason, "already running as rotate/e2e/app") {
		t.Fatalf("scheduled run: %+v", res)
	}
	if st.LastRun.Outcome != workflows.ScheduledSkipped {
		t.Errorf("the schedule's last run reads %+v", st.LastRun)
	}

	desc, err := env.Client.DescribeWorkflowExecution(ctx, running.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if info := desc.GetWorkflowExecutionInfo(); info.GetExecution().GetRunId() != running.GetRunID() || info.GetStatus().String() != "Running" || !inGrace() {
		t.Fatalf("the manual rotation must still be the one running, in grace: %v %v", info.GetExecution(), info.GetStatus())
	}
	if err := env.Client.SignalWorkflow(ctx, running.GetID(), running.GetRunID(), workflows.SignalSkipGrace, nil); err != nil {
		t.Fatal(err)
	}
	var rotated workflows.RotateResult
	if err := running.Get(ctx, &rotated); err != nil || rotated.Outcome != workflows.OutcomeRotated {
		t.Fatalf("the manual rotation must finish on its own: %+v %v", rotated, err)
	}
	if in := rotateInput(t, env, running.GetID(), running.GetRunID()); in.Reason != "by hand" {
		t.Errorf("the running rotation's input changed: %+v", in)
	}
}

// TestScheduleRenewalCheck: a renewal check rotates a certificate only when it is due (no
// version yet, then a fresh one is not due), and finds a kind that does not expire never
// due, without starting a rotation.
func TestScheduleRenewalCheck(t *testing.T) {
	crl := t.TempDir() + "/ca.crl"
	env := testenv.New(t, testenv.Options{
		Secrets: []demo.Secret{{ID: app, Strategy: "alternating", Grace: "0s"}},
		Extra: demo.CertInventory([]demo.CertSecret{{
			ID: "e2e/cert", CommonName: "e2e.localhost", AltNames: []string{"localhost"}, TTL: "1h", Grace: "0s", CRLFile: crl,
		}}),
		Seed: func(ctx context.Context, store *file.Store) error {
			_, err := demo.EnsureCA(ctx, store)
			return err
		},
	})
	ctx := context.Background()
	applyEnv(t, env, nil)
	renew := schedules.RenewalScheduleID("e2e/cert")
	if _, err := schedules.Get(ctx, env.Client, schedules.CronScheduleID("e2e/cert")); !errors.Is(err, schedules.ErrNotFound) {
		t.Fatalf("a certificate without a cron spec has only its renewal check: %v", err)
	}

	res, st, err := trigger(t, env, renew)
	if err != nil || res.Outcome != workflows.OutcomeRotated || !strings.Contains(res.Reason, "ended rotated") {
		t.Fatalf("first check (no certificate yet): %+v %v", res, err)
	}
	in := rotateInput(t, env, res.RotateWorkflowID, res.RotateRunID)
	if !strings.HasPrefix(in.Reason, workflows.ReasonRenewal+": no current version") {
		t.Errorf("the rotation's reason: %q", in.Reason)
	}

	// The check was the run's first step, set by the schedule; rotating and the outcome
	// are its own.
	requireScheduledAttributes(t, env, "e2e/cert", st.LastRun.WorkflowID, st.LastRun.RunID, workflows.OutcomeRotated, 2)

	res, st, err = trigger(t, env, renew)
	if err != nil || res.Outcome != workflows.ScheduledNotDue || !res.DueAt.After(time.Now()) || res.RotateRunID != "" {
		t.Fatalf("second check (a fresh certificate): %+v %v", res, err)
	}
	if st.LastRun.Outcome != workflows.ScheduledNotDue {
		t.Errorf("the schedule's last run reads %+v", st.LastRun)
	}
	requireScheduledAttributes(t, env, "e2e/cert", st.LastRun.WorkflowID, st.LastRun.RunID, workflows.ScheduledNotDue, 1)

	// A kind that does not expire: a renewal check run directly, as a schedule would.
	probe := workflows.ScheduledInput{SecretID: app, RenewalCheck: true, StartAttributes: true}
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "renewal-probe", TaskQueue: workflows.TaskQueue, TypedSearchAttributes: probe.Attributes(),
	}, workflows.ScheduledWorkflowName, probe)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &res); err != nil || res.Outcome != workflows.ScheduledNotDue || !strings.Contains(res.Reason, `kind "postgres" does not expire`) {
		t.Fatalf("renewal check of a postgres secret: %+v %v", res, err)
	}
	var nf *serviceerror.NotFound
	if _, err := env.Client.DescribeWorkflowExecution(ctx, workflows.RotateWorkflowID(app), ""); !errors.As(err, &nf) {
		t.Fatalf("no rotation of %s may have started: %v", app, err)
	}
}

// rotateInput reads the input a rotation was started with from its history.
func rotateInput(t *testing.T, env *testenv.Env, workflowID, runID string) workflows.RotateInput {
	t.Helper()
	it := env.Client.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	ev, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.RotateInput
	if err := codec.DataConverter(env.Codec).FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestScheduledRunWaitsForAWorkerThatKnowsIt: during a rolling upgrade, a worker from
// before schedule format 2 knows the scheduled workflow only by its old name. It must not
// take a format-2 run (it would send the search attribute updates the run is told to
// leave out, and a newer worker could then never replay the run): the run waits, with no
// update sent, until a worker that knows ScheduledRun takes it and finishes it.
func TestScheduledRunWaitsForAWorkerThatKnowsIt(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	old := sdkworker.New(env.Client, workflows.TaskQueue, sdkworker.Options{})
	old.RegisterWorkflowWithOptions(workflows.Scheduled, workflow.RegisterOptions{Name: workflows.ScheduledWorkflowNameFormat1})
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	in := workflows.ScheduledInput{SecretID: app, StartAttributes: true} // as a format-2 schedule starts it
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "upgrade-probe", TaskQueue: workflows.TaskQueue, TypedSearchAttributes: in.Attributes(),
	}, workflows.ScheduledWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	// The old worker has had the run's task and failed it.
	eventually(t, func() bool {
		return countEvents(t, env, run.GetID(), run.GetRunID(), enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED) > 0
	}, "the old worker to fail the run's first task")
	if n := countEvents(t, env, run.GetID(), run.GetRunID(), enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES); n != 0 {
		t.Fatalf("the old worker ran the format-2 run: %d search attribute updates", n)
	}
	old.Stop()

	env.StartWorker(t)
	var res workflows.ScheduledResult
	if err := run.Get(ctx, &res); err != nil || res.Outcome != workflows.OutcomeRotated {
		t.Fatalf("the run on a current worker: %+v %v", res, err)
	}
	requireScheduledAttributes(t, env, app, run.GetID(), run.GetRunID(), workflows.OutcomeRotated, 1)
	replay(t, env, run.GetID(), run.GetRunID())
}

// countEvents counts a run's history events of one type.
func countEvents(t *testing.T, env *testenv.Env, workflowID, runID string, typ enumspb.EventType) int {
	t.Helper()
	n := 0
	for it := env.Client.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0); it.HasNext(); {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == typ {
			n++
		}
	}
	return n
}
