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

// TaskQueue is the task queue Keyturn runs on (see workflows.TaskQueue).
const TaskQueue = workflows.TaskQueue

// New builds a worker for Keyturn's workflows and activities on TaskQueue. Start it with
// Start or Run.
func New(c client.Client, resolver activities.Resolver, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, TaskQueue, opts)
	Register(w, activities.NewActivities(resolver))
	catalog, _ := resolver.(activities.Catalog)
	w.RegisterActivityWithOptions(activities.NewIncidentActivities(c, catalog, schedulePauser(c)), activity.RegisterOptions{})
	return w
}

// WorkflowRegistry is anything workflows can be registered on: a worker, a replayer, a
// test environment.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}

// Registry is anything workflows and activities can be registered on.
type Registry interface {
	WorkflowRegistry
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}

// RegisterWorkflows registers Keyturn's workflows under their stable names. Replay tests
// use it alone; the names are part of every recorded history.
func RegisterWorkflows(r WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.Rotate, workflow.RegisterOptions{Name: workflows.RotateWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.Incident, workflow.RegisterOptions{Name: workflows.IncidentWorkflowName})
}

// Register registers Keyturn's workflows and the given activities.
func Register(r Registry, acts *activities.Activities) {
	RegisterWorkflows(r)
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}

// schedulePauser pauses the schedules of the secrets an incident works on. Until the
// schedules package lands there is nothing to pause.
func schedulePauser(client.Client) activities.SchedulePauser { return nil }
