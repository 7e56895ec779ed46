package workflows_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// The second tier: the Rotate workflow over the real activities and rotation steps, with
// the real file store and the fake target. The Postgres target and the real server are
// covered in tests/.

type oneSecret struct{ b activities.Binding }

func (o oneSecret) Resolve(_ context.Context, id secret.ID) (activities.Binding, error) {
	if id != o.b.Steps.SecretID {
		return activities.Binding{}, activities.ErrUnknownSecret
	}
	return o.b, nil
}

type realEnv struct {
	env    *testsuite.TestWorkflowEnvironment
	target *fake.Rotator
	store  *file.Store
}

func newRealEnv(t *testing.T, grace time.Duration) *realEnv {
	t.Helper()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := fake.New(fake.Twins)
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	b := activities.Binding{Kind: "fake", Grace: grace, Steps: rotation.Steps{SecretID: id, Rotator: target, Store: store}}
	worker.Register(env, activities.NewActivities(oneSecret{b}))
	env.SetStartWorkflowOptions(clientOptions())
	return &realEnv{env: env, target: target, store: store}
}

func (r *realEnv) rotate(t *testing.T) (workflows.RotateResult, error) {
	t.Helper()
	r.env.ExecuteWorkflow(workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if !r.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var res workflows.RotateResult
	err := r.env.GetWorkflowError()
	if err == nil {
		err = r.env.GetWorkflowResult(&res)
	}
	return res, err
}

// seed makes version 1 current and working, as a first rotation would.
func (r *realEnv) seed(t *testing.T) (secret.Version, secret.Material) {
	t.Helper()
	ctx := context.Background()
	steps := rotation.Steps{SecretID: id, Rotator: r.target, Store: r.store}
	if _, err := steps.Create(ctx, "seed"); err != nil {
		t.Fatal(err)
	}
	if _, err := steps.Promote(ctx, "seed"); err != nil {
		t.Fatal(err)
	}
	v, m, err := r.store.Read(ctx, id, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	return v, m
}

func TestRealActivitiesRotate(t *testing.T) {
	r := newRealEnv(t, 0)
	v1, m1 := r.seed(t)
	res, err := r.rotate(t)
	if err != nil {
		t.Fatal(err)
	}
	cur, m2, err := r.store.Read(context.Background(), id, secret.StageCurrent)
	if err != nil || cur.Token != res.NewVersion.Token {
		t.Fatalf("current %v, result %v, err %v", cur.Token, res.NewVersion, err)
	}
	if r.target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("old credential not revoked")
	}
	if !r.target.Works(cur.Metadata["role"], m2.Get("password")) {
		t.Fatal("new credential does not work")
	}
}

// A Create whose first attempt fails after staging is retried and reuses the version the
// first attempt recorded: one new version, applied with the same material.
func TestRealActivitiesCreateRetryReusesPendingVersion(t *testing.T) {
	r := newRealEnv(t, 0)
	r.seed(t)
	applies := r.target.Applies()
	r.target.ApplyFailures = 1
	res, err := r.rotate(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.target.Applies() - applies; got != 2 {
		t.Fatalf("want 2 applies (one failed, one retried), got %d", got)
	}
	versions, err := r.store.ListVersions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[1].Token != res.NewVersion.Token || versions[1].Number != 2 {
		t.Fatalf("want exactly versions 1 (previous) and 2 (current), got %+v", versions)
	}
}

func TestRealActivitiesCheckFailureRollsBack(t *testing.T) {
	r := newRealEnv(t, 0)
	v1, m1 := r.seed(t)
	r.target.CheckFails = true
	_, err := r.rotate(t)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeRolledBack {
		t.Fatalf("want a rolled-back failure, got %v", err)
	}
	ctx := context.Background()
	cur, _, err := r.store.Read(ctx, id, secret.StageCurrent)
	if err != nil || cur.Token != v1.Token {
		t.Fatalf("current must stay version 1: %v %v", cur.Token, err)
	}
	if _, _, err := r.store.Read(ctx, id, secret.StagePending); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("pending must be discarded: %v", err)
	}
	if !r.target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("current credential must keep working")
	}
}

func TestRealActivitiesAbortDuringGrace(t *testing.T) {
	r := newRealEnv(t, time.Hour)
	v1, m1 := r.seed(t)
	r.env.RegisterDelayedCallback(func() { r.env.SignalWorkflow(workflows.SignalAbort, nil) }, time.Minute)
	_, err := r.rotate(t)
	var canceled *temporal.CanceledError
	var res workflows.RotateResult
	if !errors.As(err, &canceled) || canceled.Details(&res) != nil || res.Outcome != workflows.OutcomeAborted {
		t.Fatalf("want an aborted rotation ending Canceled with its result, got %v %v", res.Outcome, err)
	}
	ctx := context.Background()
	cur, _, err := r.store.Read(ctx, id, secret.StageCurrent)
	if err != nil || cur.Token != v1.Token {
		t.Fatalf("version 1 must be current again: %v %v", cur.Token, err)
	}
	_, mNew, err := r.store.ReadVersion(ctx, id, res.NewVersion.Token)
	if err != nil {
		t.Fatal(err)
	}
	if r.target.Works(res.NewVersion.Metadata["role"], mNew.Get("password")) {
		t.Fatal("the aborted version must be revoked")
	}
	if !r.target.Works(v1.Metadata["role"], m1.Get("password")) {
		t.Fatal("version 1 must work")
	}
}
