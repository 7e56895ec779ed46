// Package sweep runs the worker's periodic look at every secret: it observes them with
// secretstate, publishes what it saw as the age, overdue, revoke and incident gauges, and
// notifies the inventory's routes of each secret it finds overdue.
//
// It is a ticker in each worker process rather than a Temporal Schedule: the sweep only
// reads, and what it reads feeds gauges, which are per process. A schedule would run it
// as an activity on one worker of many, and only that worker's /metrics would show the
// result; with a ticker every worker's /metrics does, so whichever one Prometheus
// scrapes is current (the alert rules take the max over workers). It also keeps working
// while Temporal is down: the stores are still read, and the Temporal facts are reported
// as unreadable. The price is one set of reads per worker per interval, and one overdue
// notification per worker, which carry the same event ID so receivers drop the repeats.
package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/internal/config"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
)

// Defaults of a Sweep.
const (
	// DefaultInterval is how often a worker sweeps: a never-rotated or overdue secret
	// shows within five minutes, at a few reads per secret each time.
	DefaultInterval = 5 * time.Minute
	// DefaultNotifyTimeout bounds the delivery of one overdue event to all its routes,
	// above notify's own 15 s per delivery; the sweep never waits for it.
	DefaultNotifyTimeout = 30 * time.Second
)

// tracerName is the instrumentation scope of the sweep's span.
const tracerName = "github.com/keyturn/keyturn/internal/sweep"

// MinInterval is the shortest interval accepted: shorter would read every store
// several times a minute for facts that change in hours.
const MinInterval = 10 * time.Second

// Notifier delivers an event to the routes that take it (the worker's binding.Resolver).
type Notifier interface {
	Notify(ctx context.Context, e notify.Event) []notify.Delivery
}

// Sweep observes an inventory's secrets every Interval. Set the fields, then call Run.
type Sweep struct {
	// Observer reads the secrets.
	Observer *secretstate.Observer
	// Gauges, when set, receive every sweep.
	Gauges *telemetry.SecretGauges
	// Notifier, when set, is told of each secret found overdue.
	Notifier Notifier
	// Interval and NotifyTimeout default to DefaultInterval and DefaultNotifyTimeout.
	Interval      time.Duration
	NotifyTimeout time.Duration
	// Logger reports failed reads and deliveries; slog.Default() when nil.
	Logger *slog.Logger
	// TracerProvider, when set, makes each sweep a span, the parent of the store calls
	// the binding traces, so they form one trace a sweep instead of loose root spans.
	TracerProvider trace.TracerProvider

	mu sync.Mutex
	// notified holds the overdue events sent (true) or being sent (false), by event ID,
	// so a secret that stays overdue is not announced again every interval. Only the
	// events of secrets still overdue are kept.
	notified map[string]bool
	wg       sync.WaitGroup
}

// Run sweeps at once, then every Interval, until ctx ends; then it waits for the overdue
// notifications in flight, which their own timeout bounds.
func (s *Sweep) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	defer s.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Wait waits for the overdue notifications in flight, which their timeout bounds.
func (s *Sweep) Wait() { s.wg.Wait() }

// Once sweeps one time and returns what it saw. Notifications of overdue secrets are
// sent in the background.
func (s *Sweep) Once(ctx context.Context) secretstate.Observation {
	if s.TracerProvider != nil {
		var span trace.Span
		ctx, span = s.TracerProvider.Tracer(tracerName).Start(ctx, "Sweep")
		defer span.End()
	}
	obs := s.Observer.Observe(ctx)
	if ctx.Err() != nil {
		return obs // cancelled mid-sweep: what it saw is incomplete, not the state
	}
	errs := map[string]int{}
	sample := telemetry.SweepSample{At: obs.At, Incidents: []string{}, IncidentsKnown: obs.IncidentsError == ""}
	for _, sec := range obs.Secrets {
		sample.Secrets = append(sample.Secrets, toSample(sec))
		for source, msg := range map[string]string{telemetry.SweepSourceStore: sec.StoreError, telemetry.SweepSourceRotations: sec.RotationError, telemetry.SweepSourceSchedules: sec.ScheduleError} {
			if msg != "" {
				errs[source]++
				s.logger().Warn("sweep: could not read", "secret", sec.ID, "source", source, "error", msg)
			}
		}
	}
	if obs.IncidentsError != "" {
		errs[telemetry.SweepSourceIncidents]++
		s.logger().Warn("sweep: could not read", "source", telemetry.SweepSourceIncidents, "error", obs.IncidentsError)
	}
	for _, in := range obs.Incidents {
		sample.Incidents = append(sample.Incidents, in.ID)
	}
	sample.Succeeded = len(errs) == 0
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("keyturn.sweep.secrets", len(obs.Secrets)),
		attribute.Int("keyturn.sweep.overdue", countOverdue(obs)), attribute.Int("keyturn.sweep.failed_reads", len(errs)))
	s.logger().Debug("sweep done", "secrets", len(obs.Secrets), "overdue", countOverdue(obs), "failed_reads", len(errs))
	if s.Gauges != nil {
		for source, n := range errs {
			s.Gauges.SweepErrors(ctx, source, n)
		}
		s.Gauges.Publish(sample)
	}
	s.notifyOverdue(ctx, obs)
	return obs
}

func toSample(sec secretstate.Secret) telemetry.SecretSample {
	out := telemetry.SecretSample{ID: string(sec.ID), Kind: sec.Kind, Owner: sec.Owner, Overdue: sec.Overdue, RevokesOutstanding: sec.RevokesOutstanding}
	if sec.Age != nil {
		d := sec.Age.Duration()
		out.Age = &d
	}
	if sec.MaxAge != nil {
		d := sec.MaxAge.Duration()
		out.MaxAge = &d
	}
	return out
}

// notifyOverdue sends a secret_overdue event for each overdue secret not announced yet
// with its current version, each in the background, and forgets the events of secrets
// no longer overdue (or overdue with another version).
func (s *Sweep) notifyOverdue(ctx context.Context, obs secretstate.Observation) {
	if s.Notifier == nil {
		return
	}
	tags := map[secret.ID][]string{}
	for _, sec := range s.Observer.Inventory.Secrets {
		tags[sec.ID] = sec.Tags
	}
	var send []notify.Event
	s.mu.Lock()
	still := map[string]bool{}
	for _, sec := range obs.Secrets {
		if !sec.IsOverdue() {
			continue
		}
		e := overdueEvent(obs.At, sec, tags[sec.ID])
		sent, known := s.notified[e.ID]
		still[e.ID] = sent
		if !known {
			send = append(send, e)
		}
	}
	s.notified = still
	s.mu.Unlock()

	timeout := s.NotifyTimeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	for _, e := range send {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Detached from the sweep, bounded by its own timeout: a slow webhook holds up
			// neither the next sweep nor, for more than the timeout, a stopping worker.
			nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			failed := 0
			for _, d := range s.Notifier.Notify(nctx, e) {
				if d.Err != nil {
					failed++
					s.logger().Warn("sweep: overdue notification not delivered", "secret", e.SecretID, "route", d.Route, "event", e.ID, "error", d.Err)
				}
			}
			if s.Gauges != nil {
				s.Gauges.SweepErrors(ctx, telemetry.SweepSourceNotify, failed)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, still := s.notified[e.ID]; !still {
				return // no longer overdue: nothing to remember
			}
			if failed > 0 {
				delete(s.notified, e.ID) // try again at the next sweep
				return
			}
			s.notified[e.ID] = true
		}()
	}
}

// overdueEvent is the secret_overdue event for an overdue secret.
func overdueEvent(at time.Time, sec secretstate.Secret, tags []string) notify.Event {
	o := notify.Overdue{Reason: sec.OverdueReason, MaxAgeFrom: sec.MaxAgeFrom}
	if v := sec.Current; v != nil {
		o.Version, o.VersionNumber = v.Token, v.Number
	}
	if sec.Age != nil {
		o.AgeSeconds = sec.Age.Duration().Seconds()
	}
	if sec.MaxAge != nil {
		o.MaxAgeSeconds = sec.MaxAge.Duration().Seconds()
	}
	return notify.OverdueEvent(at, sec.ID, sec.Kind, sec.Owner, tags, o)
}

func (s *Sweep) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Interval reads a sweep interval as the flag and KEYTURN_SWEEP_INTERVAL write it.
func Interval(text string) (time.Duration, error) {
	d, err := config.ParseDuration(text)
	if err != nil || d < MinInterval {
		return 0, fmt.Errorf("sweep interval %s: use a duration of at least %s, such as 1m or 5m", config.Displayable(text, 64), MinInterval)
	}
	return d, nil
}

func countOverdue(obs secretstate.Observation) int {
	n := 0
	for _, sec := range obs.Secrets {
		if sec.IsOverdue() {
			n++
		}
	}
	return n
}
