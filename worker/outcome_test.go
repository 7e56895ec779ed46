package worker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/workflows"
)

// fakeRotate stands in for the Rotate workflow under its name: it ends as its input's
// Reason says, so each case drives one path of the outcome interceptor.
func fakeRotate(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
	res := workflows.RotateResult{SecretID: in.SecretID, Kind: "fake"}
	switch {
	case strings.HasSuffix(in.Reason, "fail"):
		res.Outcome = workflows.OutcomeRolledBack
		return res, temporal.NewNonRetryableApplicationError("rolled back", "KeyturnTest", nil, res)
	case strings.HasSuffix(in.Reason, "bare error"):
		return res, temporal.NewNonRetryableApplicationError("no details", "KeyturnTest", nil)
	default:
		res.Outcome = workflows.OutcomeRotated
		return res, nil
	}
}

// scheduledParent starts the rotation as a child, as the Scheduled workflow does.
func scheduledParent(ctx workflow.Context, in workflows.RotateInput) error {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "rotate/" + string(in.SecretID)})
	return workflow.ExecuteChildWorkflow(ctx, workflows.RotateWorkflowName, in).Get(ctx, nil)
}

func TestOutcomesAreCounted(t *testing.T) {
	tel, reg := testTelemetry(t)
	run := func(parent bool, in workflows.RotateInput) {
		t.Helper()
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&outcomes{instruments: tel.Instruments()}}})
		env.RegisterWorkflowWithOptions(fakeRotate, workflow.RegisterOptions{Name: workflows.RotateWorkflowName})
		env.RegisterWorkflowWithOptions(scheduledParent, workflow.RegisterOptions{Name: "Parent"})
		env.SetTestTimeout(10 * time.Second)
		if parent {
			env.ExecuteWorkflow("Parent", in)
		} else {
			env.ExecuteWorkflow(workflows.RotateWorkflowName, in)
		}
		if !env.IsWorkflowCompleted() {
			t.Fatalf("%+v did not complete", in)
		}
	}
	run(false, workflows.RotateInput{SecretID: "a/b", Reason: "by hand"})
	run(false, workflows.RotateInput{SecretID: "a/b", Reason: "by hand, fail"})
	run(false, workflows.RotateInput{SecretID: "a/b", Reason: "bare error"})
	run(false, workflows.RotateInput{SecretID: "a/b", IncidentID: "inc-1", Contain: true})
	run(true, workflows.RotateInput{SecretID: "a/b", Reason: workflows.ReasonScheduled})
	// A manual rotation that calls itself scheduled is still manual: no parent.
	run(false, workflows.RotateInput{SecretID: "a/b", Reason: workflows.ReasonScheduled})
	// The parent is not a rotation and is not counted.

	got := gathered(t, reg, "keyturn_rotations_total")
	want := []string{
		"keyturn_rotations_total kind=fake,outcome=rolled_back,trigger=manual 1",
		"keyturn_rotations_total kind=fake,outcome=rotated,trigger=incident 1",
		"keyturn_rotations_total kind=fake,outcome=rotated,trigger=manual 2",
		"keyturn_rotations_total kind=fake,outcome=rotated,trigger=schedule 1",
		"keyturn_rotations_total kind=unknown,outcome=failed,trigger=manual 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("keyturn_rotations_total:\n got %q\nwant %q", got, want)
	}
}
