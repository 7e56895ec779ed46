package tests

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// TestScheduledPathsReplay runs the ScheduledRotate workflow down each of its paths on the
// real server, as a schedule's action starts it, and replays each history against today's
// code (recording it with KEYTURN_RECORD_HISTORIES=1): a rotation started and waited for,
// a renewal check that finds nothing due, and a run skipped because a rotation of the
// secret is already running.
func TestScheduledPathsReplay(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const id = secret.ID("e2e/app")
	run := func(name string, in workflows.ScheduledInput, want string) {
		t.Helper()
		in.StartAttributes = true // as a schedule's action starts it
		r, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "scheduled-history/" + name, TaskQueue: worker.TaskQueue, TypedSearchAttributes: in.Attributes(),
		}, workflows.ScheduledWorkflowName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ScheduledResult
		if err := r.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Outcome != want {
			t.Fatalf("%s: outcome %q (%s), want %q", name, res.Outcome, res.Reason, want)
		}
		checkReplay(t, env, r.GetID(), r.GetRunID(), "scheduled_"+name)
	}
	run("rotated", workflows.ScheduledInput{SecretID: id}, workflows.OutcomeRotated)
	run("not_due", workflows.ScheduledInput{SecretID: id, RenewalCheck: true}, workflows.ScheduledNotDue)

	// A rotation waiting out a long grace period is running when the schedule fires.
	if code, out := keyturn(t, env, "rotate", string(id), "--grace", "10m"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the rotation to reach its grace period", func() bool {
		v, err := env.Client.QueryWorkflow(ctx, workflows.RotateWorkflowID(id), "", workflows.QueryStatus)
		var st workflows.RotateStatus
		return err == nil && v.Get(&st) == nil && st.Step == workflows.StepGrace
	})
	run("skipped", workflows.ScheduledInput{SecretID: id}, workflows.ScheduledSkipped)
	if code, out := keyturn(t, env, "skip-grace", string(id)); code != 0 {
		t.Fatalf("skip-grace exited %d:\n%s", code, out)
	}
	if err := env.Client.GetWorkflow(ctx, workflows.RotateWorkflowID(id), "").Get(ctx, nil); err != nil {
		t.Fatalf("the rotation did not end well after skip-grace: %v", err)
	}
}

// TestIncidentRotateModeReplays runs an incident in rotate mode (each secret rotated with
// no grace, containment left to the rotation) and replays its history and its page's.
func TestIncidentRotateModeReplays(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "incident", "start", "--id", "history-rotate", "--select", "prefix=e2e/", "--mode", "rotate", "--reason", "drill", "--yes"); code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	checkReplay(t, env, workflows.IncidentWorkflowID("history-rotate"), "", "incident_rotate_all_rotated")
	checkReplay(t, env, workflows.IncidentWorkflowID("history-rotate")+"/page/1", "", "incident_page_rotate_all_rotated")
}
