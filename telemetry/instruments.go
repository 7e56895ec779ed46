package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. They use underscores, as the Temporal SDK's own metrics do, rather than
// OpenTelemetry's dots: a Prometheus that accepts UTF-8 names would otherwise show the
// dots, and dashboards would need two spellings. Prometheus adds the unit suffix and
// _total on counters: keyturn_rotations_total, keyturn_rotation_step_duration_seconds.
const (
	MetricRotations    = "keyturn_rotations"
	MetricStepDuration = "keyturn_rotation_step_duration"
	// MetricRevokeGateWaits counts revoke gates that ended, by kind, outcome (how the gate
	// ended: idle, revoked_anyway, revoked_by_operator, stopped, unsupported) and held
	// (whether it held the revoke first): keyturn_revoke_gate_waits_total.
	MetricRevokeGateWaits = "keyturn_revoke_gate_waits"
)

// Step results, the result label of MetricStepDuration.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// stepBuckets span a local certificate (milliseconds) to a slow cloud API with retries
// inside one attempt (minutes), in seconds.
var stepBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Instruments are Keyturn's own metrics. Their labels are a small fixed set (kind, step,
// result, trigger, outcome, state): never a secret, a secret ID or a version token.
type Instruments struct {
	rotations    metric.Int64Counter
	stepDuration metric.Float64Histogram
	gateWaits    metric.Int64Counter
	incident     incidentInstruments
}

func newInstruments(m metric.Meter) (*Instruments, error) {
	rotations, err := m.Int64Counter(MetricRotations,
		metric.WithDescription("Rotations finished, by kind, trigger and outcome."))
	if err != nil {
		return nil, fmt.Errorf("instrument %s: %w", MetricRotations, err)
	}
	steps, err := m.Float64Histogram(MetricStepDuration, metric.WithUnit("s"),
		metric.WithDescription("How long one attempt of a rotation step took, by kind, step and result."),
		metric.WithExplicitBucketBoundaries(stepBuckets...))
	if err != nil {
		return nil, fmt.Errorf("instrument %s: %w", MetricStepDuration, err)
	}
	gateWaits, err := m.Int64Counter(MetricRevokeGateWaits,
		metric.WithDescription("Revoke gates that ended, by kind, outcome (idle, revoked_anyway, revoked_by_operator, stopped, unsupported) and held (true when the revoke was held first)."))
	if err != nil {
		return nil, fmt.Errorf("instrument %s: %w", MetricRevokeGateWaits, err)
	}
	incident, err := newIncidentInstruments(m)
	if err != nil {
		return nil, err
	}
	return &Instruments{rotations: rotations, stepDuration: steps, gateWaits: gateWaits, incident: incident}, nil
}

// mustInstruments is newInstruments on a meter that cannot fail (the no-op one).
func mustInstruments(m metric.Meter) *Instruments {
	i, err := newInstruments(m)
	if err != nil {
		panic(err)
	}
	return i
}

// NoInstruments records nothing: for activities built without telemetry.
func NoInstruments() *Instruments { return Disabled().Instruments() }

// StepDone records one attempt of a step: its kind ("postgres"), step ("create") and
// whether it succeeded.
func (i *Instruments) StepDone(ctx context.Context, kind, step string, took time.Duration, err error) {
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	i.stepDuration.Record(context.WithoutCancel(ctx), took.Seconds(), metric.WithAttributes(
		attribute.String("kind", kind), attribute.String("step", step), attribute.String("result", result)))
}

// RotationDone counts a finished rotation by kind, trigger (manual, schedule, incident)
// and outcome (rotated, rolled_back, ...).
func (i *Instruments) RotationDone(ctx context.Context, kind, trigger, outcome string) {
	i.rotations.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(
		attribute.String("kind", kind), attribute.String("trigger", trigger), attribute.String("outcome", outcome)))
}

// RevokeGateDone counts a revoke gate that ended: the secret's kind, how it ended (a
// workflows.Gate* state) and whether it held the revoke before.
func (i *Instruments) RevokeGateDone(ctx context.Context, kind, outcome string, held bool) {
	i.gateWaits.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(
		attribute.String("kind", kind), attribute.String("outcome", outcome), attribute.Bool("held", held)))
}
