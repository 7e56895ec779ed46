package tests

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestStopRotationsFindsOneThatEndedSince: after an incident's schedules are paused, its
// second stop also asks for rotations that ended since the incident began, whose
// rollback may have re-applied a credential the containment had revoked. On the real
// server's visibility store: a rotation that ended after EndedSince is returned, one
// that ended before it is not, and without EndedSince only running rotations count. A
// running one is stopped and returned; once stopped (terminated, so it ran no rollback)
// it is not returned again.
func TestStopRotationsFindsOneThatEndedSince(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	before := time.Now().Add(-time.Second) // the server's clock is this machine's
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	after := time.Now().Add(time.Second)
	ia := activities.NewIncidentActivities(env.Client, nil, nil, nil)
	// stop asks until it gets want or 10 s have passed: the visibility store is
	// eventually consistent, so an ended or stopped rotation may take a moment to show.
	stop := func(what string, ids []secret.ID, since time.Time, want []secret.ID) {
		t.Helper()
		var got []secret.ID
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			got, err = ia.StopRotations(ctx, activities.StopRotationsInput{IDs: ids, Reason: "test", EndedSince: since})
			if err != nil || slices.Equal(got, want) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v; want %v", what, got, err, want)
		}
	}
	ids := []secret.ID{id, "e2e/other"}
	stop("ended since before it ended", ids, before, []secret.ID{id})
	stop("ended since after it ended", ids, after, nil)
	stop("running ones only", ids, time.Time{}, nil)

	// A rotation that no worker picks up stays running until it is stopped.
	const stuck = secret.ID("e2e/stuck")
	if _, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RotateWorkflowID(stuck), TaskQueue: "no-worker"},
		workflows.RotateWorkflowName, workflows.RotateInput{SecretID: stuck}); err != nil {
		t.Fatal(err)
	}
	stop("a running one", []secret.ID{stuck}, before, []secret.ID{stuck})
	stop("the same, terminated", []secret.ID{stuck}, before, nil)
}
