package workflows_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// refusingStage is a store whose StagePending fails while refuse is set, as a store that
// rejects the write after the target minted.
type refusingStage struct {
	stores.Store
	refuse bool
}

func (r *refusingStage) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	if r.refuse {
		return secret.Version{}, errors.New("store refused the write")
	}
	return r.Store.StagePending(ctx, req)
}

// sweepRecorder is the minting fake, noting the requests Sweep gets.
type sweepRecorder struct {
	*fake.Minting
	mu    sync.Mutex
	sweep []rotators.MintRequest
}

func (s *sweepRecorder) Sweep(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	s.mu.Lock()
	s.sweep = append(s.sweep, req)
	s.mu.Unlock()
	return s.Minting.Sweep(ctx, req)
}

// A rotation whose Create gives up after the target minted (every attempt mints, then
// the store refuses the write) rolls back over the real activities and steps, and the
// rollback removes the key the last attempt left: the target holds the current key only,
// the result names the swept key, and Sweep looked back to when the Create step began.
func TestRealActivitiesRollbackSweepsWhatAFailedCreateMinted(t *testing.T) {
	fileStore, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &refusingStage{Store: fileStore}
	target := &sweepRecorder{Minting: fake.NewMinting()}
	b := activities.Binding{Kind: "fake-minting", Steps: rotation.Steps{SecretID: id, Rotator: target, Store: store}}
	// The version in use, made outside the workflow (the test environment gives every
	// run the same run ID, and so the same version token).
	ctx := context.Background()
	if _, err := b.Steps.Create(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Steps.Promote(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	current := target.Handles()
	if len(current) != 1 {
		t.Fatalf("test setup: the target holds %v, want one key", current)
	}

	store.refuse = true
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	worker.Register(env, activities.NewActivities(oneSecret{b}))
	env.SetStartWorkflowOptions(clientOptions())
	env.ExecuteWorkflow(workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	err = env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeRolledBack {
		t.Fatalf("rotation: %v, want it rolled back", err)
	}
	var res workflows.RotateResult
	if err := appErr.Details(&res); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(target.Handles(), current) {
		t.Fatalf("the target holds %v after the rollback, want only the current key %v", target.Handles(), current)
	}
	if res.Rollback == nil || len(res.Rollback.Swept) != 1 || res.Rollback.Swept[0]["key_id"] == current[0] || res.Rollback.RevokeError != "" {
		t.Fatalf("rollback result %+v, want the one key the failed Create left swept", res.Rollback)
	}
	for _, st := range res.Steps {
		if st.Step != workflows.StepCreate {
			continue
		}
		if len(target.sweep) != 1 || !target.sweep[0].Since.Equal(st.Started) {
			t.Fatalf("Sweep requests %+v, want one with Since = the Create step's start %v", target.sweep, st.Started)
		}
		return
	}
	t.Fatalf("no create step in %+v", res.Steps)
}
