package worker

import (
	"context"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// incidentOutcomeInbound measures every run of the Incident workflow from its report, the
// way outcomeInbound counts rotations. When a run's function returns outside replay it
// counts the secrets the run brought to each state (the report's counts less those the
// run was handed by the one before it), the containment time if this run completed the
// scope's containment, and, unless the run continues as new, the incident by its outcome.
// Each is thus counted once per incident, with the same rare exception as rotations: a
// workflow task that fails after the function returned and is retried counts its run
// again.
type incidentOutcomeInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	instruments *telemetry.Instruments
}

func (o *incidentOutcomeInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := o.Next.ExecuteWorkflow(ctx, in)
	if workflow.IsReplaying(ctx) {
		return res, err
	}
	var input workflows.IncidentInput
	if len(in.Args) == 1 {
		input, _ = in.Args[0].(workflows.IncidentInput)
	}
	rep, _ := res.(workflows.IncidentReport)
	if d, ok := activities.DetailsOf[workflows.IncidentReport](err); ok {
		rep = d
	}
	bg := context.Background()
	before := input.Carry.Progress()
	o.instruments.IncidentSecrets(bg, telemetry.StateContained, rep.Contained-before.Contained)
	o.instruments.IncidentSecrets(bg, telemetry.StateRotated, rep.Rotated-before.Rotated)
	o.instruments.IncidentSecrets(bg, telemetry.StateFailed, rep.Failed-before.Failed)
	if rep.Total > 0 && rep.Contained == rep.Total && before.Contained < rep.Total {
		o.instruments.IncidentContained(bg, time.Duration(rep.AllContainedMs)*time.Millisecond)
	}
	if outcome := workflows.IncidentOutcome(rep, err, ctx.Err() != nil); outcome != "" {
		o.instruments.IncidentDone(bg, outcome)
	}
	return res, err
}
