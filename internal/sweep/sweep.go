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
// notification per worker, which carry the same event ID so receivers drop the repeats;
// a notification that fails is sent again at later sweeps, with a doubling wait.
package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/internal/inventory"
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
	// FirstResendWait is how long after a failed overdue notification the sweep sends it
	// again at the earliest; each further failure doubles the wait, up to MaxResendWait,
	// so a dead webhook is not called every sweep forever.
	FirstResendWait = 5 * time.Minute
	// MaxResendWait caps the wait between attempts.
	MaxResendWait = 4 * time.Hour
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
	// notified holds the overdue events sent, being sent or failed, by event ID, so a
	// secret that stays overdue is not announced again every interval, and a failed
	// event is sent again only after its backoff. Only the events of secrets still
	// overdue are kept.
	notified map[string]*notice
	wg       sync.WaitGroup
}

// notice is where one overdue event stands.
type notice struct {
	sent     bool
	sending  bool
	failures int       // attempts that failed, in a row
	retryAt  time.Time // the earliest sweep time to send again after a failure
}

// due reports whether the event should be sent at a sweep at time at.
func (n *notice) due(at time.Time) bool {
	return !n.sent && !n.sending && !at.Before(n.retryAt)
}

// failed records a failed attempt of a sweep at time at, and when to try again.
func (n *notice) failed(at time.Time) {
	n.failures++
	wait := FirstResendWait
	for i := 1; i < n.failures && wait < MaxResendWait; i++ {
		wait *= 2
	}
	n.retryAt = at.Add(min(wait, MaxResendWait))
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
	errs := map[string]int{} // failed reads by source (secretstate's sources are telemetry's)
	failed := 0
	sample := telemetry.SweepSample{At: obs.At, Incidents: []string{}, IncidentsKnown: obs.IncidentsError == ""}
	for _, sec := range obs.Secrets {
		sample.Secrets = append(sample.Secrets, toSample(sec))
		for _, e := range sec.ReadErrors() {
			errs[e.Source]++
			failed++
			s.logger().Warn("sweep: could not read", "secret", sec.ID, "source", e.Source, "error", e.Err)
		}
		if sec.AgeUnknown() {
			s.logger().Warn("sweep: age unknown", "secret", sec.ID, "reason", sec.OverdueReason)
		}
	}
	if obs.IncidentsError != "" {
		errs[telemetry.SweepSourceIncidents]++
		failed++
		s.logger().Warn("sweep: could not read", "source", telemetry.SweepSourceIncidents, "error", obs.IncidentsError)
	}
	for _, in := range obs.Incidents {
		sample.Incidents = append(sample.Incidents, in.ID)
	}
	sample.Succeeded = failed == 0
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("keyturn.sweep.secrets", len(obs.Secrets)),
		attribute.Int("keyturn.sweep.overdue", countOverdue(obs)), attribute.Int("keyturn.sweep.failed_reads", failed))
	s.logger().Debug("sweep done", "secrets", len(obs.Secrets), "overdue", countOverdue(obs), "failed_reads", failed)
	if obs.Yielded > 0 {
		trace.SpanFromContext(ctx).SetAttributes(attribute.Float64("keyturn.sweep.yielded_seconds", obs.Yielded.Seconds()))
		s.logger().Info("sweep stood aside while an incident's containment ran", "waited", obs.Yielded.Round(time.Millisecond), "secrets", len(obs.Secrets))
	}
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
	out := telemetry.SecretSample{ID: string(sec.ID), Kind: sec.Kind, Owner: sec.Owner, Overdue: sec.Overdue}
	if sec.Age != nil {
		created := sec.Current.CreatedAt
		out.Created = &created
	}
	if sec.RevokesOutstanding != nil {
		out.RevokesOutstanding = map[string]int{}
		for _, state := range secretstate.RevokeStates {
			out.RevokesOutstanding[state] = 0
		}
		if *sec.RevokesOutstanding > 0 {
			out.RevokesOutstanding[sec.RevokeState] = 1
		}
	}
	if sec.MaxAge != nil {
		d := sec.MaxAge.Duration()
		out.MaxAge = &d
	}
	return out
}

// notifyOverdue sends a secret_overdue event for each overdue secret not announced yet
// with its current version (or whose last attempt failed and whose backoff is over),
// each in the background, and forgets the events of secrets no longer overdue (or
// overdue with another version).
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
	still := map[string]*notice{}
	for _, sec := range obs.Secrets {
		if !sec.IsOverdue() {
			continue
		}
		e := overdueEvent(obs.At, sec, tags[sec.ID])
		n, known := s.notified[e.ID]
		if !known {
			n = &notice{}
		}
		still[e.ID] = n
		if n.due(obs.At) {
			n.sending = true
			send = append(send, e)
		}
	}
	s.notified = still
	s.mu.Unlock()

	timeout := s.NotifyTimeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	at := obs.At
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
			n, still := s.notified[e.ID]
			if !still {
				return // no longer overdue: nothing to remember
			}
			n.sending = false
			if failed > 0 {
				n.failed(at) // try again at a sweep after the backoff
				return
			}
			n.sent = true
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
	d, err := inventory.ParseDuration(text)
	if err != nil || d < MinInterval {
		return 0, fmt.Errorf("sweep interval %s: use a duration of at least %s, such as 1m or 5m", inventory.Displayable(text, 64), MinInterval)
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
