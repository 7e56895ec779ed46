// Package worker builds the Temporal worker that runs Keyturn: it registers the workflows
// and the activities on one task queue. Everything else (which client, which inventory)
// is decided by the caller.
package worker

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// TaskQueue is the task queue Keyturn runs on (see workflows.TaskQueue).
const TaskQueue = workflows.TaskQueue

// New builds a worker for Keyturn's workflows and activities on TaskQueue. Start it with
// Start or Run.
//
// The incident playbook's activities take the resolver as their catalog when it is one
// (binding.Resolver is), and pause schedules through WithSchedules, if given.
func New(c client.Client, resolver activities.Resolver, opts sdkworker.Options, extras ...Option) sdkworker.Worker {
	var o options
	for _, e := range extras {
		e(&o)
	}
	var instruments *telemetry.Instruments
	if o.telemetry != nil {
		instruments = o.telemetry.Instruments()
		opts.Interceptors = append(opts.Interceptors, &outcomes{instruments: instruments})
	}
	if opts.StickyScheduleToStartTimeout == 0 {
		opts.StickyScheduleToStartTimeout = StickyScheduleToStartTimeout
	}
	w := sdkworker.New(c, TaskQueue, opts)
	Register(w, activities.NewActivities(resolver, activities.WithInstruments(instruments), activities.WithAudit(o.audit), activities.WithUrgency(o.urgent)))
	catalog, _ := resolver.(activities.Catalog)
	w.RegisterActivityWithOptions(activities.NewIncidentActivities(c, catalog, o.schedules, o.audit), activity.RegisterOptions{})
	return w
}

// StickyScheduleToStartTimeout is how long a workflow task waits for the worker that has
// its workflow cached before any worker may take it (replaying the history). A worker
// that dies holds its workflows that long: an incident cached on a worker killed
// mid-containment can start nothing, its hedged batches included, until then. make
// bench-incident-kill (300 roles, the killed worker holding the incident): contained in
// 1.17-2.12 s with 1 s, 0.43-0.47 s with 300 ms, against 0.30-0.34 s with both workers
// alive. A task waits this long only on a worker whose workflow task pollers stay busy
// that long; then it is replayed elsewhere, which costs more for a long history. make
// bench-incident counts such timeouts in a 1,000-secret incident: one in 200 sampled
// rotations with 300 ms, none with 1 s. On a Temporal server
// whose history.timerProcessorMaxTimeShift is at its default of 1 s (devserver sets
// 50 ms) a timeout under a second fires after a second.
const StickyScheduleToStartTimeout = 300 * time.Millisecond

// Option adds to what New builds.
type Option func(*options)

type options struct {
	schedules activities.SchedulePauser
	telemetry *telemetry.Telemetry
	audit     activities.Auditor
	urgent    activities.Urgency
}

// WithUrgency makes the worker hold u while it contains an incident's scope, so that the
// process's background work waiting on it (the secret sweep, on a *priority.Gate) stands
// aside meanwhile.
func WithUrgency(u activities.Urgency) Option {
	return func(o *options) { o.urgent = u }
}

// WithAudit makes every step, rotation, operator signal, incident and schedule change
// leave a record on the audit trail l (an *audit.Log).
func WithAudit(l *audit.Log) Option {
	return func(o *options) {
		if l != nil { // a nil *audit.Log in the interface would not compare equal to nil
			o.audit = l
		}
	}
}

// WithTelemetry records Keyturn's metrics on t: every step's latency, every rotation's
// outcome, and every incident's progress and outcome. Traces and the Temporal SDK's
// metrics come with the client (see telemetry.Telemetry.Interceptors and
// TemporalMetrics), not from here.
func WithTelemetry(t *telemetry.Telemetry) Option {
	return func(o *options) { o.telemetry = t }
}

// WithSchedules lets incidents pause and resume the schedules of the secrets they work on
// (schedules.Pauser). Without it an incident pauses nothing; the secrets' rotate/<id>
// workflow IDs still keep a scheduled run from rotating beside it.
func WithSchedules(p activities.SchedulePauser) Option {
	return func(o *options) { o.schedules = p }
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
	r.RegisterWorkflowWithOptions(workflows.Scheduled, workflow.RegisterOptions{Name: workflows.ScheduledWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.Scheduled, workflow.RegisterOptions{Name: workflows.ScheduledWorkflowNameFormat1})
	r.RegisterWorkflowWithOptions(workflows.Incident, workflow.RegisterOptions{Name: workflows.IncidentWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.IncidentPage, workflow.RegisterOptions{Name: workflows.IncidentPageWorkflowName})
}

// Register registers Keyturn's workflows and the given activities.
func Register(r Registry, acts *activities.Activities) {
	RegisterWorkflows(r)
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}
