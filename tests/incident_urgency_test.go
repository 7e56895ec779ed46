package tests

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/priority"
	"github.com/keyturn/keyturn/workflows"
)

// TestContainmentHoldsTheWorkersUrgency: while a worker contains an incident's scope
// (here a batch held up on its target by a row lock on the role), it holds its gate, so
// the worker's secret sweep stands aside; once the batch is done the gate opens again.
// The sweep waiting at the gate is secretstate's TestObserveStandsAsideForUrgentWork.
func TestContainmentHoldsTheWorkersUrgency(t *testing.T) {
	env := testenv.New(t, testenv.Options{Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s"}}, NoWorker: true})
	gate := &priority.Gate{}
	env.Urgency = gate
	env.StartWorker(t)
	ctx := context.Background()
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	if gate.Busy() {
		t.Fatal("a rotation held the gate; only containment is urgent")
	}
	old, _ := current(t, env, "e2e/app")
	release := holdRole(t, env, old.Metadata["role"])
	in := workflows.IncidentInput{IncidentID: "urgent-1", Selector: activities.Selector{Prefix: "e2e/"}, Mode: workflows.ModeContain,
		Reason: "urgency drill", Operator: "test"}
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(in.IncidentID), TaskQueue: workflows.TaskQueue},
		workflows.IncidentWorkflowName, in)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the containment batch to hold the gate", gate.Busy)
	time.Sleep(priority.Linger + 500*time.Millisecond) // past any linger: the held-up batch holds it
	if !gate.Busy() {
		t.Fatal("the gate opened while the batch was held up on its target")
	}
	waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := gate.Wait(waitCtx); err == nil {
		t.Fatal("background work passed the gate while the batch was held up on its target")
	}
	release()
	var rep workflows.IncidentReport
	getCtx, cancelGet := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelGet()
	if err := run.Get(getCtx, &rep); err != nil {
		t.Fatalf("incident: %v", err)
	}
	if rep.Contained != 1 || rep.Rotated != 1 {
		t.Fatalf("report: %d contained, %d rotated; want 1 and 1", rep.Contained, rep.Rotated)
	}
	waitFor(t, 10*time.Second, "the gate to open after the containment", func() bool { return !gate.Busy() })
}
