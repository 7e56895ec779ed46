package workflows_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/workflows"
)

func clientOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.RotateWorkflowID(id)}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// catalog is a fixed inventory for the incident's scope activities.
type catalog []activities.SecretInfo

func (c catalog) Secrets() []activities.SecretInfo { return c }

// onScope makes the incident's scope the given secrets, read through the real paging of
// activities.IncidentActivities.ScopePage.
func onScope(env *testsuite.TestWorkflowEnvironment, ia *activities.IncidentActivities, scope ...activities.SecretInfo) {
	real := activities.NewIncidentActivities(nil, catalog(scope), nil, nil)
	env.OnActivity(ia.ScopePage, mock.Anything, mock.Anything).Return(real.ScopePage)
}

// runIncident runs the Incident workflow on env with in and returns its report, failing
// the test if it did not complete without an error.
func runIncident(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.IncidentInput) workflows.IncidentReport {
	t.Helper()
	env.ExecuteWorkflow(workflows.IncidentWorkflowName, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep workflows.IncidentReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
