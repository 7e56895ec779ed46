// Package worker builds the Temporal worker that runs Keyturn: it registers the workflows
// and the activities on one task queue. Everything else (which client, which inventory)
// is decided by the caller.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/workflows"
)

// TaskQueue is the task queue Keyturn's workflows and activities run on.
const TaskQueue = "keyturn"

// New builds a worker for Keyturn's workflows and activities on TaskQueue. Start it with
// Start or Run.
func New(c client.Client, resolver activities.Resolver, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, TaskQueue, opts)
	Register(w, activities.NewActivities(resolver))
	return w
}

// Register registers Keyturn's workflows and the given activities on any registry (a
// worker, a replayer or a test environment), under their stable names.
func Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Rotate, workflow.RegisterOptions{Name: workflows.RotateWorkflowName})
	if acts != nil {
		r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
	}
}
