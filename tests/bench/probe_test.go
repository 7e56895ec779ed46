package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// probe times what the worker does on behalf of an incident, without changing it: every
// Resolve, every store and rotator call (by wrapping what Resolve returns), and every
// activity with the time it waited between being scheduled and starting (as a worker
// interceptor). It answers "where does the time go" from inside the process.
type probe struct {
	inner activities.Resolver

	mu  sync.Mutex
	ops map[string][]time.Duration
}

var (
	_ activities.Resolver = (*probe)(nil)
	_ activities.Catalog  = (*probe)(nil)
)

func newProbe(inner activities.Resolver) *probe {
	return &probe{inner: inner, ops: map[string][]time.Duration{}}
}

func (p *probe) add(op string, d time.Duration) {
	p.mu.Lock()
	p.ops[op] = append(p.ops[op], d)
	p.mu.Unlock()
}

func (p *probe) timed(op string, start time.Time) { p.add(op, time.Since(start)) }

// reset forgets everything timed so far (the seeding).
func (p *probe) reset() {
	p.mu.Lock()
	p.ops = map[string][]time.Duration{}
	p.mu.Unlock()
}

// Resolve implements activities.Resolver.
func (p *probe) Resolve(ctx context.Context, id secret.ID) (activities.Binding, error) {
	defer p.timed("resolve", time.Now())
	b, err := p.inner.Resolve(ctx, id)
	if err != nil {
		return b, err
	}
	// Only a rotator with exactly postgres's capabilities is wrapped: the wrapper has the
	// same ones (Generator, GroupRevoker, UsageReporter), and would hide any other (Purger,
	// Renewer) from the rotation package's type assertions.
	_, purger := b.Steps.Rotator.(rotators.Purger)
	_, renewer := b.Steps.Rotator.(rotators.Renewer)
	if g, ok := b.Steps.Rotator.(pgRotator); ok && !purger && !renewer {
		b.Steps.Rotator = timedGenerator{g: g, p: p}
	}
	b.Steps.Store = timedStore{s: b.Steps.Store, p: p}
	return b, nil
}

// Secrets implements activities.Catalog for the incident's scope.
func (p *probe) Secrets() []activities.SecretInfo {
	return p.inner.(activities.Catalog).Secrets()
}

// write prints one line per operation: count, mean, p50, p95, max, and the total time
// summed over calls (which exceeds the wall time when calls overlap).
func (p *probe) write(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.ops))
	for name := range p.ops {
		names = append(names, name)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcalls\tmean ms\tp50 ms\tp95 ms\tmax ms\tsum s\t")
	for _, name := range names {
		ds := slices.Clone(p.ops[name])
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, len(ds),
			ms(sum/time.Duration(len(ds))), ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(ds[len(ds)-1]), sum.Seconds())
	}
	_ = tw.Flush()
}

// pgRotator is what the postgres rotator is.
type pgRotator interface {
	rotators.Generator
	rotators.GroupRevoker
	rotators.UsageReporter
}

// timedGenerator times a rotator's calls.
type timedGenerator struct {
	g pgRotator
	p *probe
}

func (t timedGenerator) GroupKey() any { return t.g.GroupKey() }

// RevokeGroup hands the members' own rotators, unwrapped, to the inner rotator, which
// accepts only its own kind.
func (t timedGenerator) RevokeGroup(ctx context.Context, members []rotators.GroupMember) []rotators.GroupOutcome {
	defer t.p.timed("rotator.RevokeGroup", time.Now())
	inner := make([]rotators.GroupMember, len(members))
	for i, m := range members {
		inner[i] = m
		if w, ok := m.Rotator.(timedGenerator); ok {
			inner[i].Rotator = w.g
		}
	}
	return t.g.RevokeGroup(ctx, inner)
}

func (t timedGenerator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	defer t.p.timed("rotator.InUse", time.Now())
	return t.g.InUse(ctx, req)
}

func (t timedGenerator) Generate(ctx context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	defer t.p.timed("rotator.Generate", time.Now())
	return t.g.Generate(ctx, req)
}

func (t timedGenerator) Apply(ctx context.Context, req rotators.ApplyRequest) error {
	defer t.p.timed("rotator.Apply", time.Now())
	return t.g.Apply(ctx, req)
}

func (t timedGenerator) Test(ctx context.Context, req rotators.TestRequest) error {
	defer t.p.timed("rotator.Test", time.Now())
	return t.g.Test(ctx, req)
}

func (t timedGenerator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	defer t.p.timed("rotator.Revoke", time.Now())
	return t.g.Revoke(ctx, req)
}

// timedStore times a store's calls.
type timedStore struct {
	s stores.Store
	p *probe
}

func (t timedStore) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	defer t.p.timed("store.StagePending", time.Now())
	return t.s.StagePending(ctx, req)
}

func (t timedStore) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	defer t.p.timed("store.Read", time.Now())
	return t.s.Read(ctx, id, stage)
}

func (t timedStore) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	defer t.p.timed("store.ReadVersion", time.Now())
	return t.s.ReadVersion(ctx, id, token)
}

func (t timedStore) Promote(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	defer t.p.timed("store.Promote", time.Now())
	return t.s.Promote(ctx, id, token)
}

func (t timedStore) DiscardPending(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	defer t.p.timed("store.DiscardPending", time.Now())
	return t.s.DiscardPending(ctx, id, token)
}

func (t timedStore) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	defer t.p.timed("store.ListVersions", time.Now())
	return t.s.ListVersions(ctx, id)
}

// activityProbe is a worker interceptor that times each activity's execution and the
// time it waited in the task queue (scheduled to started, both server clock).
type activityProbe struct {
	interceptor.WorkerInterceptorBase
	p *probe
}

func (a *activityProbe) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityInbound{p: a.p}
	i.Next = next
	return i
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	p *probe
}

func (i *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	name := info.ActivityType.Name
	if info.IsLocalActivity {
		name += " (local)"
	} else if !info.ScheduledTime.IsZero() && !info.StartedTime.IsZero() {
		i.p.add("wait "+name, info.StartedTime.Sub(info.ScheduledTime))
	}
	start := time.Now()
	res, err := i.Next.ExecuteActivity(ctx, in)
	i.p.add("activity "+name, time.Since(start))
	return res, err
}
