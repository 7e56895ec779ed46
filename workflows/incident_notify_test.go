package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// runContainIncident runs a contain-mode incident over p/a and p/b whose batch
// containment contains p/a only; rotateB is p/b's rotation. It returns the
// notifications sent, in order, and whether p/b's rotation had ended when
// incident_contained was sent.
func runContainIncident(t *testing.T, rotateB func() (workflows.RotateResult, error)) ([]activities.NotifyIncidentInput, bool, error) {
	env, ia := incidentEnv(t)
	a := activities.NewActivities(nil)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env.SetStartTime(start)
	onScope(env, ia, activities.SecretInfo{ID: "p/a", Kind: "postgres"}, activities.SecretInfo{ID: "p/b", Kind: "postgres"})
	env.OnActivity(ia.PauseSchedules, mock.Anything, mock.Anything).Return(activities.PausedSchedules{}, nil)
	env.OnActivity(ia.StopRotations, mock.Anything, mock.Anything).Return(nil, nil)
	env.OnActivity(a.ContainBatch, mock.Anything, mock.Anything).Return(
		[]activities.ContainedSecret{{ID: "p/a", At: start.Add(time.Second)}, {ID: "p/b", Error: "connection refused"}}, nil)
	bDone, containedAfterB := false, false
	env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			if in.SecretID == "p/a" {
				return workflows.RotateResult{SecretID: "p/a", Outcome: workflows.OutcomeRotated, PromotedAt: start.Add(3 * time.Second)}, nil
			}
			bDone = true
			return rotateB()
		})
	var sent []activities.NotifyIncidentInput
	env.OnActivity(a.NotifyIncident, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyIncidentInput) (activities.NotifyResult, error) {
			sent = append(sent, in)
			if in.Type == string(notify.IncidentContained) {
				containedAfterB = bDone
			}
			return activities.NotifyResult{}, nil
		})
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, workflows.IncidentInput{
		IncidentID: "i-9", Selector: activities.Selector{Prefix: "p/"}, Mode: workflows.ModeContain, Reason: "leak", Operator: "oncall",
	})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the incident did not complete")
	}
	return sent, containedAfterB, env.GetWorkflowError()
}

func types(sent []activities.NotifyIncidentInput) []string {
	var out []string
	for _, s := range sent {
		out = append(out, s.Type)
	}
	return out
}

// A secret the batch could not contain is contained by its own rotation; the scope is
// contained, and incident_contained sent, only when that rotation has contained it.
func TestIncidentContainedWaitsForTheLastSecret(t *testing.T) {
	sent, after, err := runContainIncident(t, func() (workflows.RotateResult, error) {
		return workflows.RotateResult{SecretID: "p/b", Outcome: workflows.OutcomeRotated, ContainedAt: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC), PromotedAt: time.Date(2026, 1, 2, 3, 4, 9, 0, time.UTC)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := types(sent); len(got) != 3 || got[0] != "incident_started" || got[1] != "incident_contained" || got[2] != "incident_finished" {
		t.Fatalf("sent %v", got)
	}
	if !after {
		t.Error("incident_contained was sent before p/b, which the batch missed, was contained")
	}
	if c := sent[1].Incident; c.Contained != 2 || c.NotContained != 0 || c.ContainedSeconds != 2 {
		t.Errorf("incident_contained says %+v, want 2 contained after 2s", c)
	}
	want := notify.Incident{Mode: "contain", Selector: "prefix=p/", Reason: "leak", Operator: "oncall", Secrets: 2, Contained: 2, Rotated: 2, ContainedSeconds: 2}
	if f := sent[2]; f.Outcome != workflows.IncidentRotated || f.IncidentID != "i-9" || f.Incident != want {
		t.Errorf("incident_finished: %+v, want outcome rotated and %+v", f, want)
	}
	if s := sent[0].Incident; s.Secrets != 2 || s.Contained != 0 || s.NotContained != 0 {
		t.Errorf("incident_started says %+v", s)
	}
}

// A secret whose containment fails settles the scope as it fails: incident_contained
// says one was not contained, and incident_finished that the incident failed.
func TestIncidentContainedCountsWhatWasNot(t *testing.T) {
	sent, after, err := runContainIncident(t, func() (workflows.RotateResult, error) {
		res := workflows.RotateResult{SecretID: "p/b", Outcome: workflows.OutcomeFailed}
		return res, temporal.NewNonRetryableApplicationError("contain: connection refused", workflows.ErrTypeFailed, nil, res)
	})
	if err == nil {
		t.Fatal("an incident with a failed secret completed")
	}
	if got := types(sent); len(got) != 3 || got[1] != "incident_contained" || !after {
		t.Fatalf("sent %v (after p/b: %v)", got, after)
	}
	if c := sent[1].Incident; c.Contained != 1 || c.NotContained != 1 || c.Failed != 1 || c.NeedsHuman != 1 {
		t.Errorf("incident_contained says %+v, want 1 contained, 1 not, 1 failed", c)
	}
	if f := sent[2]; f.Outcome != workflows.IncidentFailed || f.Incident.Rotated != 1 || f.Incident.Failed != 1 || f.Incident.NotContained != 1 || f.Incident.NeedsHuman != 1 {
		t.Errorf("incident_finished: %+v", f)
	}
}

func TestIncidentOutcome(t *testing.T) {
	rotated := workflows.IncidentReport{Secrets: []workflows.SecretReport{{ID: "a", Outcome: workflows.OutcomeRotated}}}
	revokeFailed := workflows.IncidentReport{Secrets: []workflows.SecretReport{{ID: "a", Outcome: workflows.OutcomeRevokeFailed}}}
	for name, c := range map[string]struct {
		rep       workflows.IncidentReport
		err       error
		cancelled bool
		want      string
	}{
		"all rotated":         {rep: rotated, want: workflows.IncidentRotated},
		"one needs a human":   {rep: revokeFailed, want: workflows.IncidentFailed},
		"failed":              {rep: rotated, err: temporal.NewNonRetryableApplicationError("x", workflows.ErrTypeFailed, nil), want: workflows.IncidentFailed},
		"empty scope":         {err: temporal.NewNonRetryableApplicationError("x", workflows.ErrTypeEmptyScope, nil), want: workflows.IncidentRejected},
		"invalid":             {err: temporal.NewNonRetryableApplicationError("x", workflows.ErrTypeInvalidInput, nil), want: workflows.IncidentRejected},
		"cancelled":           {rep: rotated, err: errors.New("x"), cancelled: true, want: workflows.IncidentAborted},
		"continues as new":    {rep: rotated, err: &workflow.ContinueAsNewError{}, want: ""},
		"canceled error only": {err: temporal.NewCanceledError(), want: workflows.IncidentAborted},
	} {
		if got := workflows.IncidentOutcome(c.rep, c.err, c.cancelled); got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

// A secret the batch contained and its own rotation contained again (a rotation in
// flight made a credential after the batch) is one contained secret, contained at the
// later time.
func TestCarryProgressCountsASecretOnce(t *testing.T) {
	c := &workflows.IncidentCarry{
		Scope:     []secret.ID{"a", "b", "c"},
		Contained: []int64{500, 700, 0},
		Done: []workflows.SecretReport{
			{ID: "a", Outcome: workflows.OutcomeRotated, ContainedMs: 900, RotatedMs: 1000, Superseded: true},
			{ID: "b", Outcome: workflows.OutcomeRotated, ContainedMs: 700, RotatedMs: 1100, Batch: true},
			{ID: "c", Outcome: workflows.OutcomeFailed, Error: "contain: refused"},
		},
	}
	p := c.Progress()
	if p.Total != 3 || p.Done != 3 || p.Contained != 2 || p.AllContainedMs != 900 || p.Rotated != 2 || p.Failed != 1 || p.NeedsHuman != 1 {
		t.Fatalf("progress %+v", p)
	}
	var none *workflows.IncidentCarry
	if p := none.Progress(); p.Total != 0 || p.Done != 0 || p.Contained != 0 || p.Rotated != 0 || p.Failed != 0 {
		t.Fatalf("the first run starts from %+v", p)
	}
}
