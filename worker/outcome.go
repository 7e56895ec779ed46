package worker

import (
	"context"
	"strings"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/telemetry"
	"github.com/keyturn/keyturn/workflows"
)

// Triggers of a rotation, the trigger label of keyturn_rotations_total.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerIncident = "incident"
)

// outcomes counts every Rotate workflow that finishes, by kind, trigger and outcome, and
// measures incidents (incidentOutcomeInbound). It watches the workflows from outside:
// their commands stay as they are, so recorded histories still replay. It counts only
// when the workflow function returns outside replay, which is once per rotation (a
// workflow task that fails after the function returned and is retried could count it
// twice; that is rare and errs high).
type outcomes struct {
	interceptor.WorkerInterceptorBase
	instruments *telemetry.Instruments
}

func (o *outcomes) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	base := interceptor.WorkflowInboundInterceptorBase{Next: next}
	switch workflow.GetInfo(ctx).WorkflowType.Name {
	case workflows.RotateWorkflowName:
		return &outcomeInbound{WorkflowInboundInterceptorBase: base, instruments: o.instruments}
	case workflows.IncidentWorkflowName:
		return &incidentOutcomeInbound{WorkflowInboundInterceptorBase: base, instruments: o.instruments}
	}
	return next
}

type outcomeInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	instruments *telemetry.Instruments
}

func (o *outcomeInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := o.Next.ExecuteWorkflow(ctx, in)
	if workflow.IsReplaying(ctx) {
		return res, err
	}
	var input workflows.RotateInput
	if len(in.Args) == 1 {
		input, _ = in.Args[0].(workflows.RotateInput)
	}
	result, _ := res.(workflows.RotateResult)
	if err != nil {
		result, _ = activities.DetailsOf[workflows.RotateResult](err)
	}
	o.instruments.RotationDone(context.Background(), label(result.Kind, "unknown"), trigger(ctx, input), label(result.Outcome, outcomeOf(err)))
	if g := result.RevokeGate; g != nil {
		o.instruments.RevokeGateDone(context.Background(), label(result.Kind, "unknown"), g.State, !g.HeldSince.IsZero())
	}
	return res, err
}

// trigger says what started the rotation: an incident, a schedule (a child of the
// Scheduled workflow) or a person.
func trigger(ctx workflow.Context, in workflows.RotateInput) string {
	switch {
	case in.IncidentID != "" || in.Contain:
		return TriggerIncident
	case workflow.GetInfo(ctx).ParentWorkflowExecution != nil && strings.HasPrefix(in.Reason, workflows.ReasonScheduled):
		return TriggerSchedule
	default:
		return TriggerManual
	}
}

// outcomeOf names the outcome of a rotation that ended without reporting one.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return workflows.OutcomeRotated
	case temporal.IsCanceledError(err):
		return workflows.OutcomeAborted
	default:
		return workflows.OutcomeFailed
	}
}

func label(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
