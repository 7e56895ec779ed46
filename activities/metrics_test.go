package activities_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/telemetry"
)

// TestStepsAreMeasured runs two steps as Temporal activities and finds one latency
// series per step, labelled with the kind, the step and its result, and nothing else.
func TestStepsAreMeasured(t *testing.T) {
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := rotation.Steps{SecretID: dueID, Rotator: fake.New(fake.Shared), Store: store}
	acts := activities.NewActivities(bound{activities.Binding{Kind: "localca", Steps: steps}}, activities.WithInstruments(tel.Instruments()))

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	if _, err := env.ExecuteActivity(acts.Create, activities.StepInput{SecretID: dueID, Token: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(acts.Test, activities.StepInput{SecretID: dueID, Token: "no-such-token"}); err == nil {
		t.Fatal("testing a version that was never created succeeded")
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, f := range families {
		if f.GetName() != "keyturn_rotation_step_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_scope_") {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			series = append(series, strings.Join(labels, ","))
		}
	}
	slices.Sort(series)
	want := []string{"kind=localca,result=error,step=test", "kind=localca,result=ok,step=create"}
	if !slices.Equal(series, want) {
		t.Fatalf("step series = %q, want %q", series, want)
	}
}
