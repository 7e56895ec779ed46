package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

func incidentEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.IncidentActivities) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	ia := activities.NewIncidentActivities(nil, nil, nil, nil)
	worker.Register(env, activities.NewActivities(nil))
	env.RegisterActivity(ia)
	return env, ia
}

// TestIncidentFailureKeepsWhatItPaused: an incident that fails after pausing schedules
// (here: stopping the rotations a schedule may have started meanwhile fails, after the
// containment) still reports which schedules it paused, with the command that resumes
// them, and how the worker's scope differed from the plan.
func TestIncidentFailureKeepsWhatItPaused(t *testing.T) {
	env, ia := incidentEnv(t)
	onScope(env, ia, activities.SecretInfo{ID: "prod/a", Kind: "postgres"})
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{Paused: []string{"keyturn/prod/a"}, KeptPaused: []string{"keyturn-renew/prod/a"}}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil).Once()
	env.OnActivity("ContainBatch", mock.Anything, mock.Anything).Return([]activities.ContainedSecret{{ID: "prod/a", At: time.Now()}}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, temporal.NewNonRetryableApplicationError("visibility down", "Test", nil))
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-1", Selector: activities.Selector{Prefix: "prod/"}, Mode: workflows.ModeContain,
		Reason: "leak", Operator: "oncall", Planned: []secret.ID{"prod/a", "prod/b"},
	})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.HasDetails() {
		t.Fatalf("workflow error %v, want one carrying the report", err)
	}
	var rep workflows.IncidentReport
	if err := appErr.Details(&rep); err != nil {
		t.Fatal(err)
	}
	sch := rep.Schedules
	if len(sch.Paused) != 1 || sch.Paused[0] != "keyturn/prod/a" || len(sch.KeptPaused) != 1 ||
		sch.Note != "incident i-1 (oncall): leak" || sch.ResumeCommand != "keyturn schedules resume --incident i-1" {
		t.Fatalf("schedules in the report: %+v", sch)
	}
	if len(rep.Unmatched) != 1 || rep.Unmatched[0] != "prod/b" || len(rep.Unplanned) != 0 {
		t.Fatalf("scope difference %+v, want prod/b unmatched", rep.ScopeDiff)
	}
}

// TestIncidentRefusesDryRun: a dry run is the CLI's; the workflow refuses one, so an
// older client's dry run is never taken for a real incident.
func TestIncidentRefusesDryRun(t *testing.T) {
	env, _ := incidentEnv(t)
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-2", Selector: activities.Selector{Prefix: "prod/"}, Mode: workflows.ModeContain, Reason: "drill", DryRun: true,
	})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "dry run starts no workflow") {
		t.Fatalf("a dry-run input: %v", err)
	}
}

// TestIncidentRecontainsWhatAScheduleStartedWhilePausing: in contain mode the scope is
// contained, then its schedules are paused. A rotation found after that (a schedule
// started it before its pause; running, or ended with a rollback that may have re-applied
// a credential the batch revoked) sends its secret through a batch again at once; when
// that batch fails for it, its own rotation contains it. The others rely on the first
// batch.
func TestIncidentRecontainsWhatAScheduleStartedWhilePausing(t *testing.T) {
	for _, again := range []string{"contained", "failed"} {
		t.Run("again "+again, func(t *testing.T) {
			env, ia := incidentEnv(t)
			onScope(env, ia, activities.SecretInfo{ID: "prod/a", Kind: "postgres"}, activities.SecretInfo{ID: "prod/b", Kind: "postgres"})
			env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{Paused: []string{"keyturn/prod/a"}}, nil)
			env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil).Once()
			env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return([]secret.ID{"prod/a"}, nil).Once()
			now := time.Now()
			var batches [][]secret.ID
			env.OnActivity("ContainBatch", mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.ContainBatchInput) ([]activities.ContainedSecret, error) {
					batches = append(batches, in.SecretIDs)
					var out []activities.ContainedSecret
					for _, id := range in.SecretIDs {
						if len(batches) > 1 && again == "failed" {
							out = append(out, activities.ContainedSecret{ID: id, Error: "connection refused"})
							continue
						}
						out = append(out, activities.ContainedSecret{ID: id, At: now})
					}
					return out, nil
				})
			already := map[secret.ID]bool{}
			env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
				func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
					already[in.SecretID] = in.AlreadyContained
					res := workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated}
					res.PromotedAt = now
					return res, nil
				})
			env.OnActivity("NotifyIncident", mock.Anything, mock.Anything).Return(nil, nil).Maybe()
			env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
				IncidentID: "i-3", Selector: activities.Selector{Prefix: "prod/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
			})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("incident: %v", err)
			}
			if len(batches) != 2 || !slices.Equal(batches[1], []secret.ID{"prod/a"}) {
				t.Fatalf("batches %v, want the scope, then prod/a again", batches)
			}
			if already["prod/a"] != (again == "contained") || !already["prod/b"] {
				t.Errorf("AlreadyContained of the rotations: %v, want prod/b and, unless its second batch failed, prod/a", already)
			}
		})
	}
}

// TestIncidentBeforeScopePagesContinuesAsNew: an incident started before the scope was
// read in pages (replaying, on upgraded workers, the GetVersion it recorded then) still
// carries a scope larger than one run's share into a new run, and the new run finishes
// it: every secret rotated once, the report whole.
func TestIncidentBeforeScopePagesContinuesAsNew(t *testing.T) {
	const n = 1001 // one more than a run rotates
	scope := make([]activities.SecretInfo, n)
	for i := range scope {
		scope[i] = activities.SecretInfo{ID: secret.ID(fmt.Sprintf("prod/s%04d", i)), Kind: "postgres"}
	}
	rotated := map[secret.ID]int{}
	setUp := func() (*testsuite.TestWorkflowEnvironment, *activities.IncidentActivities) {
		env, ia := incidentEnv(t)
		env.OnGetVersion("scope-pages", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		env.OnActivity(ia.Scope, mock.Anything, mock.Anything).Return(scope, nil)
		env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
		env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
		env.OnActivity(ia.ResumeSchedules, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
		env.OnActivity("NotifyIncident", mock.Anything, mock.Anything).Return(nil, nil).Maybe()
		env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
			func(ctx workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
				rotated[in.SecretID]++
				return workflows.RotateResult{SecretID: in.SecretID, Outcome: workflows.OutcomeRotated, PromotedAt: workflow.Now(ctx)}, nil
			})
		return env, ia
	}
	in := workflows.IncidentInput{IncidentID: "i-old", Selector: activities.Selector{Prefix: "prod/"}, Mode: workflows.ModeRotate, Reason: "leak", Operator: "oncall"}

	env, _ := setUp()
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, in)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("first run ended %v, want continue-as-new", err)
	}
	var next workflows.IncidentInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carry == nil || len(next.Carry.Scope) != n || len(next.Carry.Done) != 1000 || next.Planned != nil {
		t.Fatalf("carry to the next run: scope %d, done %d", len(next.Carry.Scope), len(next.Carry.Done))
	}

	env, _ = setUp()
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, next)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("second run: %v", err)
	}
	var rep workflows.IncidentReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total != n || rep.Rotated != n || rep.Failed != 0 || rep.Phase != workflows.PhaseDone {
		t.Fatalf("report: total %d, rotated %d, failed %d, phase %s", rep.Total, rep.Rotated, rep.Failed, rep.Phase)
	}
	if len(rotated) != n {
		t.Fatalf("%d secrets rotated, want %d", len(rotated), n)
	}
	for id, times := range rotated {
		if times != 1 {
			t.Fatalf("%s rotated %d times", id, times)
		}
	}
}
