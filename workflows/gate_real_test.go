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

// The revoke gate over the real activities, the real file store and the fake target:
// the policy comes from the binding through the plan, and the target's sessions hold
// the revoke until they close.
func TestRealActivitiesGateHoldsUntilTheSessionCloses(t *testing.T) {
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.NewWithUsage(fake.Twins)
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	b := activities.Binding{Kind: "fake", Grace: time.Minute, RevokeGate: &activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: 30 * time.Second, Hold: true},
		Steps: rotation.Steps{SecretID: id, Rotator: target, Store: store}}
	worker.Register(env, activities.NewActivities(oneSecret{b}))
	env.SetStartWorkflowOptions(clientOptions())
	r := &realEnv{env: env, target: target.Rotator, store: store}
	v1, m1 := r.seed(t)
	role := v1.Metadata["role"]
	target.SetUses(role, session)

	var held workflows.RotateStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryStatus)
		if err != nil || v.Get(&held) != nil {
			t.Errorf("query: %v", err)
		}
		if !target.Works(role, m1.Get("password")) {
			t.Error("the old credential was revoked while its session was open")
		}
		target.SetUses(role) // the consumer moves
	}, time.Hour)
	res, err := r.rotate(t)
	if err != nil {
		t.Fatal(err)
	}
	if held.Outcome != workflows.OutcomeRevokeHeld || held.RevokeGate == nil || len(held.RevokeGate.Uses) != 1 || held.RevokeGate.Uses[0] != session {
		t.Fatalf("an hour in, the status must show the revoke held with the session named, got %+v", held)
	}
	if res.Outcome != workflows.OutcomeRotated || res.RevokeGate == nil || res.RevokeGate.State != workflows.GateIdle {
		t.Fatalf("want rotated after the gate saw the role idle, got %+v", res)
	}
	if target.Works(role, m1.Get("password")) {
		t.Fatal("the old credential must be revoked once its session closed")
	}
	if n := target.UsageChecks(); n < 100 {
		t.Fatalf("want a check every 30s for an hour, got %d", n)
	}
}
