package workflows_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// A kind whose target mints the credential and whose revocation has a second, final step:
// a Create attempt that dies after the target made a key is retried without leaving that
// key behind, and the previous key is deactivated, then deleted after the recovery window.
func TestRotateMintingKindCleansUpAndPurges(t *testing.T) {
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.NewMinting()
	target.After = time.Hour
	b := activities.Binding{Kind: "fake-minting", Grace: time.Minute, Steps: rotation.Steps{SecretID: id, Rotator: target, Store: store}}

	rotate := func(failMints int) workflows.RotateResult {
		t.Helper()
		target.MintFailuresAfterCreate = failMints
		var ts testsuite.WorkflowTestSuite
		ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		env := ts.NewTestWorkflowEnvironment()
		worker.Register(env, activities.NewActivities(oneSecret{b}))
		env.SetStartWorkflowOptions(clientOptions())
		env.ExecuteWorkflow(workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("rotation: %v", err)
		}
		var res workflows.RotateResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}

	first := rotate(1)
	if total, active := target.Keys(); total != 1 || active != 1 {
		t.Fatalf("after a first rotation whose first Create attempt died after minting: %d keys, %d active; want 1 and 1 (the abandoned key deleted)", total, active)
	}
	if first.Outcome != workflows.OutcomeRotated {
		t.Fatalf("first rotation outcome %q", first.Outcome)
	}

	second := rotate(0)
	if total, active := target.Keys(); total != 1 || active != 1 {
		t.Fatalf("after the second rotation: %d keys, %d active; want only the new key (the previous one deactivated, then purged)", total, active)
	}
	var steps []string
	for _, s := range second.Steps {
		steps = append(steps, s.Step)
	}
	want := []string{"plan", "create", "test", "promote", "grace", "revoke", "purge"}
	if len(steps) != len(want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Fatalf("steps %v, want %v", steps, want)
		}
	}
	if second.Error != "" {
		t.Errorf("result error %q, want none", second.Error)
	}
}
