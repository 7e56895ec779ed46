package worker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// fakeIncident stands in for the Incident workflow under its name. Its input's Reason
// picks the run: "first" contains the scope of three in a batch, rotates one secret and
// continues as new; "last" (with the first run's carry) rotates one more, fails the
// third and fails; "empty" matches no secret.
func fakeIncident(ctx workflow.Context, in workflows.IncidentInput) (workflows.IncidentReport, error) {
	rep := workflows.IncidentReport{IncidentID: in.IncidentID, Mode: workflows.ModeContain}
	switch in.Reason {
	case "first":
		rep.IncidentProgress = workflows.IncidentProgress{Total: 3, Done: 1, Contained: 3, Rotated: 1, AllContainedMs: 1500}
		next := in
		next.Reason, next.Carry = "last", firstCarry()
		return rep, workflow.NewContinueAsNewError(ctx, workflows.IncidentWorkflowName, next)
	case "last":
		rep.IncidentProgress = workflows.IncidentProgress{Total: 3, Done: 3, Contained: 3, Rotated: 2, Failed: 1, AllContainedMs: 1500}
		rep.Secrets = append(in.Carry.Done,
			workflows.SecretReport{ID: "p/b", Outcome: workflows.OutcomeRotated, ContainedMs: 1200, RotatedMs: 4000, Batch: true},
			workflows.SecretReport{ID: "p/c", Outcome: workflows.OutcomeRolledBack, ContainedMs: 1500, Batch: true, Error: "test failed"})
		return rep, temporal.NewNonRetryableApplicationError("1 of 3 secrets failed", "KeyturnRotationFailed", nil, rep)
	default:
		return rep, temporal.NewNonRetryableApplicationError("matches no secret", workflows.ErrTypeEmptyScope, nil)
	}
}

func firstCarry() *workflows.IncidentCarry {
	return &workflows.IncidentCarry{
		Scope: []secret.ID{"p/a", "p/b", "p/c"}, Kinds: []string{"fake", "fake", "fake"},
		Contained: []int64{1000, 1200, 1500},
		Done:      []workflows.SecretReport{{ID: "p/a", Outcome: workflows.OutcomeRotated, ContainedMs: 1000, RotatedMs: 3000, Batch: true}},
	}
}

// An incident that continues as new is counted once: each run adds the secrets it
// brought to a state, the run that contained the whole scope observes the containment
// time, and only the last run counts the incident, by its outcome.
func TestIncidentOutcomesAreCountedOnce(t *testing.T) {
	tel, reg := testTelemetry(t)
	run := func(in workflows.IncidentInput) {
		t.Helper()
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&outcomes{instruments: tel.Instruments()}}})
		env.RegisterWorkflowWithOptions(fakeIncident, workflow.RegisterOptions{Name: workflows.IncidentWorkflowName})
		env.SetTestTimeout(10 * time.Second)
		env.ExecuteWorkflow(workflows.IncidentWorkflowName, in)
		if !env.IsWorkflowCompleted() {
			t.Fatalf("%+v did not complete", in)
		}
	}
	run(workflows.IncidentInput{IncidentID: "i-1", Reason: "first"})
	run(workflows.IncidentInput{IncidentID: "i-1", Reason: "last", Carry: firstCarry()})
	run(workflows.IncidentInput{IncidentID: "i-2", Reason: "empty"})

	got := gathered(t, reg, "keyturn_incidents_total", "keyturn_incident_secrets_total", "keyturn_incident_containment_duration_seconds")
	want := []string{
		"keyturn_incident_containment_duration_seconds count=1 sum=1.5",
		"keyturn_incident_secrets_total state=contained 3",
		"keyturn_incident_secrets_total state=failed 1",
		"keyturn_incident_secrets_total state=rotated 2",
		"keyturn_incidents_total outcome=failed 1",
		"keyturn_incidents_total outcome=rejected 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("incident metrics:\n got %q\nwant %q", got, want)
	}
}

// testTelemetry sets up telemetry whose metrics go to the returned registry.
func testTelemetry(t *testing.T) (*telemetry.Telemetry, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, reg
}

// gathered lists the series of the named families as "name labels value" (a histogram
// as its count and sum), sorted, the OpenTelemetry scope labels left out.
func gathered(t *testing.T, reg *prometheus.Registry, names ...string) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if !slices.Contains(names, f.GetName()) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_scope_") {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			value := strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64)
			if h := m.GetHistogram(); h != nil {
				value = "count=" + strconv.FormatUint(h.GetSampleCount(), 10) + " sum=" + strconv.FormatFloat(h.GetSampleSum(), 'f', -1, 64)
			}
			got = append(got, strings.TrimSpace(f.GetName()+" "+strings.Join(labels, ","))+" "+value)
		}
	}
	slices.Sort(got)
	return got
}
