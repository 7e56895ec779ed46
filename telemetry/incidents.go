package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Incident metric names; Prometheus shows them as keyturn_incidents_total,
// keyturn_incident_secrets_total and keyturn_incident_containment_duration_seconds.
const (
	MetricIncidents           = "keyturn_incidents"
	MetricIncidentSecrets     = "keyturn_incident_secrets"
	MetricIncidentContainment = "keyturn_incident_containment_duration"
)

// States of a secret in an incident, the state label of MetricIncidentSecrets. A secret
// can reach several: contained, then rotated or failed.
const (
	// StateContained: every earlier credential of the secret is refused by its target
	// (contain mode only).
	StateContained = "contained"
	// StateRotated: the secret has a new credential, tested and promoted, without error.
	StateRotated = "rotated"
	// StateFailed: the incident's work on the secret ended with an error; a human must
	// look at it.
	StateFailed = "failed"
)

// containmentBuckets span a handful of secrets contained in one batch (half a second)
// to a scope of thousands on slow targets (ten minutes), in seconds.
var containmentBuckets = []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}

// incidentInstruments measure incidents. Their labels are outcome and state, a few words
// each: never an incident ID (the incident_running gauge is another sweep's).
type incidentInstruments struct {
	incidents   metric.Int64Counter
	secrets     metric.Int64Counter
	containment metric.Float64Histogram
}

func newIncidentInstruments(m metric.Meter) (incidentInstruments, error) {
	var i incidentInstruments
	var err error
	if i.incidents, err = m.Int64Counter(MetricIncidents,
		metric.WithDescription("Incidents finished, by outcome (rotated, failed, aborted, rejected).")); err != nil {
		return i, fmt.Errorf("instrument %s: %w", MetricIncidents, err)
	}
	if i.secrets, err = m.Int64Counter(MetricIncidentSecrets,
		metric.WithDescription("Secrets that reached a state in an incident: contained, rotated or failed.")); err != nil {
		return i, fmt.Errorf("instrument %s: %w", MetricIncidentSecrets, err)
	}
	if i.containment, err = m.Float64Histogram(MetricIncidentContainment, metric.WithUnit("s"),
		metric.WithDescription("Time from an incident's start until every secret in its scope was contained (contain mode)."),
		metric.WithExplicitBucketBoundaries(containmentBuckets...)); err != nil {
		return i, fmt.Errorf("instrument %s: %w", MetricIncidentContainment, err)
	}
	return i, nil
}

// IncidentDone counts a finished incident by its outcome (workflows.IncidentOutcome).
func (i *Instruments) IncidentDone(ctx context.Context, outcome string) {
	i.incident.incidents.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// IncidentSecrets counts n secrets of an incident that reached state; n <= 0 records
// nothing.
func (i *Instruments) IncidentSecrets(ctx context.Context, state string, n int) {
	if n > 0 {
		i.incident.secrets.Add(context.WithoutCancel(ctx), int64(n), metric.WithAttributes(attribute.String("state", state)))
	}
}

// IncidentContained records how long an incident took to contain its whole scope.
func (i *Instruments) IncidentContained(ctx context.Context, took time.Duration) {
	i.incident.containment.Record(context.WithoutCancel(ctx), took.Seconds())
}
