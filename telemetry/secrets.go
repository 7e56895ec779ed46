package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Names of the secret sweep's metrics. With their units, Prometheus shows them as
// keyturn_secret_age_seconds, keyturn_secret_max_age_seconds, keyturn_secret_overdue,
// keyturn_revokes_outstanding, keyturn_incident_running, keyturn_sweep_errors_total and
// keyturn_sweep_last_success_timestamp_seconds.
//
// Unlike the rotation metrics, the per-secret gauges carry the secret's ID (and kind and
// owner) as labels: the ID is a reference, like a host name, and an alert must say which
// secret is overdue. A version token is never a label.
const (
	MetricSecretAge          = "keyturn_secret_age"
	MetricSecretMaxAge       = "keyturn_secret_max_age"
	MetricSecretOverdue      = "keyturn_secret_overdue"
	MetricRevokesOutstanding = "keyturn_revokes_outstanding"
	MetricIncidentRunning    = "keyturn_incident_running"
	MetricSweepErrors        = "keyturn_sweep_errors"
	MetricSweepLastSuccess   = "keyturn_sweep_last_success_timestamp"
)

// Sources of sweep errors, the source label of MetricSweepErrors.
const (
	SweepSourceStore     = "store"
	SweepSourceRotations = "rotations"
	SweepSourceSchedules = "schedules"
	SweepSourceIncidents = "incidents"
	SweepSourceNotify    = "notify"
)

// SweepSources lists every source, in the order they are read.
var SweepSources = []string{SweepSourceStore, SweepSourceRotations, SweepSourceSchedules, SweepSourceIncidents, SweepSourceNotify}

// SecretSample is one secret as the last sweep saw it. A nil field is a fact the sweep
// could not read (or, for Age and MaxAge, that does not exist): its series is left out
// rather than shown stale or as zero.
type SecretSample struct {
	ID, Kind, Owner string
	// Created is when the store recorded the current version; the age gauge counts from
	// it to each collection. Nil without a current version, when the store could not be
	// read, or when it records no creation time.
	Created *time.Time
	// MaxAge is the policy's maximum age; nil without a policy.
	MaxAge *time.Duration
	// Overdue; nil when the store could not be read.
	Overdue *bool
	// RevokesOutstanding holds, for every state of the gauge's state label, 1 when the
	// secret has a revoke (or rollback) outstanding in that state, else 0; nil when
	// Temporal could not be asked.
	RevokesOutstanding map[string]int
}

// SweepSample is what one sweep saw.
type SweepSample struct {
	Secrets []SecretSample
	// Incidents are the IDs of the running incidents; IncidentsKnown is false when
	// Temporal could not be asked, and then no incident series is shown.
	Incidents      []string
	IncidentsKnown bool
	// Succeeded is true when every read of the sweep worked; its time then becomes the
	// last success.
	Succeeded bool
	At        time.Time
}

// SecretGauges export the latest sweep: the gauges are observed from the last
// SweepSample published, at each collection, so a scrape never sees half a sweep.
type SecretGauges struct {
	errors metric.Int64Counter
	now    func() time.Time

	mu          sync.Mutex
	last        SweepSample
	lastSuccess time.Time
}

// NewSecretGauges registers the sweep's instruments on t's meter. Call it once per
// process: each call registers its own callback.
func NewSecretGauges(t *Telemetry) (*SecretGauges, error) {
	m := t.MeterProvider().Meter(instrumentationName)
	g := &SecretGauges{now: time.Now}
	var errs []error
	gauge := func(name, unit, description string) metric.Float64ObservableGauge {
		opts := []metric.Float64ObservableGaugeOption{metric.WithDescription(description)}
		if unit != "" {
			opts = append(opts, metric.WithUnit(unit))
		}
		i, err := m.Float64ObservableGauge(name, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("instrument %s: %w", name, err))
		}
		return i
	}
	age := gauge(MetricSecretAge, "s", "Age of each secret's current version: the time of the scrape minus the time its store recorded the version, as the last sweep read it (stores record no promotion time, so it includes the minutes from Create to Promote). Absent for a secret without a current version, whose store records no creation time, or whose store could not be read in the last sweep.")
	maxAge := gauge(MetricSecretMaxAge, "s", "The maximum age each secret's rotation policy allows (max_age, or derived from its schedule or its certificate's lifetime); absent for a secret without a policy.")
	overdue := gauge(MetricSecretOverdue, "", "1 when a secret is older than its maximum age or has no current version at all, else 0; absent when its store could not be read in the last sweep.")
	revokes := gauge(MetricRevokesOutstanding, "", "Revokes (or rollbacks) of the secret outstanding, by state: retrying (a running rotation retries a revoke), rollback (it retries a rollback), failed (the latest rotation ended revoke_failed: a credential may still work and nothing retries it). One series per state, 1 for the secret's state, else 0. Absent when Temporal could not be asked in the last sweep.")
	incidents := gauge(MetricIncidentRunning, "", "1 for each incident playbook running now.")
	lastSuccess := gauge(MetricSweepLastSuccess, "s", "Unix time at which the last sweep that read everything without an error started; absent until one has.")
	var err error
	if g.errors, err = m.Int64Counter(MetricSweepErrors, metric.WithDescription("Reads of the secret sweep that failed, by source: store (a secret's store), rotations, schedules and incidents (Temporal), notify (an overdue notification not delivered).")); err != nil {
		errs = append(errs, fmt.Errorf("instrument %s: %w", MetricSweepErrors, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		now := g.now()
		for _, s := range g.last.Secrets {
			ids := []attribute.KeyValue{attribute.String("secret_id", s.ID), attribute.String("kind", s.Kind), attribute.String("owner", s.Owner)}
			labels := metric.WithAttributes(ids...)
			if s.Created != nil {
				// Counted to now, not to the sweep: the gauge keeps aging between sweeps. A
				// store clock ahead of ours is not a negative age.
				o.ObserveFloat64(age, max(now.Sub(*s.Created), 0).Seconds(), labels)
			}
			if s.MaxAge != nil {
				o.ObserveFloat64(maxAge, s.MaxAge.Seconds(), labels)
			}
			if s.Overdue != nil {
				o.ObserveFloat64(overdue, boolValue(*s.Overdue), labels)
			}
			for state, n := range s.RevokesOutstanding {
				o.ObserveFloat64(revokes, float64(n), metric.WithAttributes(append(ids, attribute.String("state", state))...))
			}
		}
		if g.last.IncidentsKnown {
			for _, id := range g.last.Incidents {
				o.ObserveFloat64(incidents, 1, metric.WithAttributes(attribute.String("incident_id", id)))
			}
		}
		if !g.lastSuccess.IsZero() {
			o.ObserveFloat64(lastSuccess, float64(g.lastSuccess.UnixMilli())/1000)
		}
		return nil
	}, age, maxAge, overdue, revokes, incidents, lastSuccess); err != nil {
		return nil, fmt.Errorf("register the sweep's gauges: %w", err)
	}
	// Every source starts at zero, so the first error is an increase a rule can see.
	for _, source := range SweepSources {
		g.errors.Add(context.Background(), 0, metric.WithAttributes(attribute.String("source", source)))
	}
	return g, nil
}

// Publish makes s what the gauges show from now on.
func (g *SecretGauges) Publish(s SweepSample) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = s
	if s.Succeeded {
		g.lastSuccess = s.At
	}
}

// SweepErrors counts n failed reads of one source (a SweepSource constant).
func (g *SecretGauges) SweepErrors(ctx context.Context, source string, n int) {
	if n > 0 {
		g.errors.Add(context.WithoutCancel(ctx), int64(n), metric.WithAttributes(attribute.String("source", source)))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
