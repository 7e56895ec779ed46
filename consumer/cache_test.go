package consumer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// fakeSource serves a value per secret, or fails; it counts reads and can hold them.
type fakeSource struct {
	mu    sync.Mutex
	value map[secret.ID]string
	err   error
	reads atomic.Int64
	// gate, when set, blocks every read until it is closed.
	gate chan struct{}
}

func (f *fakeSource) Current(ctx context.Context, id secret.ID) (Value, error) {
	f.reads.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return Value{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Value{}, f.err
	}
	pw, ok := f.value[id]
	if !ok {
		return Value{}, errors.New("read " + string(id) + ": not found")
	}
	return Value{
		Version:  secret.Version{SecretID: id, Token: secret.VersionToken("t-" + pw)},
		Material: secret.Material{"password": secret.NewSensitive(pw)},
	}, nil
}

func (f *fakeSource) set(id secret.ID, pw string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.value == nil {
		f.value = map[secret.ID]string{}
	}
	f.value[id] = pw
	f.err = err
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type staleCall struct {
	id  secret.ID
	age time.Duration
	err error
}

// recorder collects OnStale and OnError calls.
type recorder struct {
	mu     sync.Mutex
	stale  []staleCall
	errors int
}

func (r *recorder) onStale(id secret.ID, age time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stale = append(r.stale, staleCall{id, age, err})
}

func (r *recorder) onError(secret.ID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
}

func (r *recorder) staleCalls() []staleCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]staleCall(nil), r.stale...)
}

func newTestCache(t *testing.T, src Source, opts Options) (*Cache, *fakeClock, *recorder) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	opts.Now = clock.Now
	opts.OnStale = rec.onStale
	opts.OnError = rec.onError
	c, err := New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, clock, rec
}

func mustGet(t *testing.T, c *Cache, id secret.ID) string {
	t.Helper()
	v, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return v.Field("password").Reveal()
}

func TestCacheServesWithinTTLAndRereadsAfter(t *testing.T) {
	src := &fakeSource{}
	src.set("app/db", "one", nil)
	c, clock, _ := newTestCache(t, src, Options{TTL: time.Minute, Jitter: -1})

	if got := mustGet(t, c, "app/db"); got != "one" {
		t.Fatalf("first Get = %q, want one", got)
	}
	src.set("app/db", "two", nil)
	clock.Advance(59 * time.Second)
	if got := mustGet(t, c, "app/db"); got != "one" {
		t.Fatalf("Get within TTL = %q, want the cached one", got)
	}
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads within TTL, want 1", n)
	}
	clock.Advance(time.Second)
	if got := mustGet(t, c, "app/db"); got != "two" {
		t.Fatalf("Get after TTL = %q, want two", got)
	}
}

func TestCacheJitterStaysWithinBounds(t *testing.T) {
	c, err := New(&fakeSource{}, Options{TTL: 100 * time.Second, Jitter: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[bool]bool{}
	for range 1000 {
		d := c.lifetime()
		if d < 90*time.Second || d > 110*time.Second {
			t.Fatalf("lifetime %s outside TTL ±10%%", d)
		}
		seen[d < 100*time.Second] = true
	}
	if len(seen) != 2 {
		t.Fatal("1000 lifetimes all fell on one side of the TTL: no jitter")
	}
}

func TestCacheInvalidateForcesRead(t *testing.T) {
	src := &fakeSource{}
	src.set("app/db", "one", nil)
	c, _, _ := newTestCache(t, src, Options{TTL: time.Hour})
	mustGet(t, c, "app/db")
	src.set("app/db", "two", nil)
	c.Invalidate("app/db")
	c.Invalidate("never/read") // unknown IDs are fine
	if got := mustGet(t, c, "app/db"); got != "two" {
		t.Fatalf("Get after Invalidate = %q, want two", got)
	}
}

func TestCacheOneReadAtATimePerSecret(t *testing.T) {
	src := &fakeSource{gate: make(chan struct{})}
	src.set("app/db", "one", nil)
	src.set("app/other", "x", nil)
	c, _, _ := newTestCache(t, src, Options{})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		id := secret.ID("app/db")
		if i%2 == 1 {
			id = "app/other"
		}
		wg.Go(func() {
			if _, err := c.Get(context.Background(), id); err != nil {
				errs <- err
			}
		})
	}
	// Let every goroutine reach the shared read before releasing it. Whether they all
	// joined it or some read afterwards from the cache, reads must stay at one per secret.
	for src.reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := src.reads.Load(); got != 2 {
		t.Fatalf("%d reads for 2 secrets under %d concurrent Gets, want 2", got, 2*n)
	}
}

func TestCacheCallerCancelDoesNotCancelSharedRead(t *testing.T) {
	src := &fakeSource{gate: make(chan struct{})}
	src.set("app/db", "one", nil)
	c, _, _ := newTestCache(t, src, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "app/db"); first <- err }()
	for src.reads.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get returned %v, want context.Canceled", err)
	}
	close(src.gate)
	// The read the cancelled caller started goes on and fills the cache.
	if got := mustGet(t, c, "app/db"); got != "one" {
		t.Fatalf("Get = %q, want one", got)
	}
}

func TestCacheStaleOnErrorUpToMaxStale(t *testing.T) {
	src := &fakeSource{}
	src.set("app/db", "hunter2-canary", nil)
	c, clock, rec := newTestCache(t, src, Options{TTL: time.Minute, Jitter: -1, MaxStale: 5 * time.Minute, RetryAfter: 10 * time.Second})
	mustGet(t, c, "app/db")

	outage := errors.New("read app/db: store unreachable")
	src.set("app/db", "new", outage)
	clock.Advance(2 * time.Minute)
	if got := mustGet(t, c, "app/db"); got != "hunter2-canary" {
		t.Fatalf("Get during outage = %q, want the stale value", got)
	}
	calls := rec.staleCalls()
	if len(calls) != 1 || calls[0].id != "app/db" || calls[0].age != 2*time.Minute || !errors.Is(calls[0].err, outage) {
		t.Fatalf("OnStale calls = %+v, want one for app/db, age 2m, with the store's error", calls)
	}

	// Within RetryAfter the stale value is served without another read.
	reads := src.reads.Load()
	clock.Advance(5 * time.Second)
	mustGet(t, c, "app/db")
	if src.reads.Load() != reads {
		t.Fatal("the store was read again within RetryAfter")
	}

	// Past MaxStale: an error naming the secret, with the store's error, without material.
	clock.Advance(3 * time.Minute)
	_, err := c.Get(t.Context(), "app/db")
	if err == nil {
		t.Fatal("Get past MaxStale returned the stale value")
	}
	if !errors.Is(err, outage) || !strings.Contains(err.Error(), "app/db") || !strings.Contains(err.Error(), "MaxStale") {
		t.Fatalf("error past MaxStale = %q, want it to name the secret, MaxStale and wrap the store's error", err)
	}
	if strings.Contains(err.Error(), "hunter2-canary") {
		t.Fatal("the error holds the material")
	}
	if rec.errors != 2 {
		t.Fatalf("OnError called %d times, want 2 (one per failed read)", rec.errors)
	}

	// The store is back: fresh values again.
	src.set("app/db", "new", nil)
	if got := mustGet(t, c, "app/db"); got != "new" {
		t.Fatalf("Get after recovery = %q, want new", got)
	}
}

func TestCacheNoStaleWhenDisabledOrNeverRead(t *testing.T) {
	outage := errors.New("store unreachable")
	src := &fakeSource{}
	src.set("app/db", "one", outage)
	c, clock, rec := newTestCache(t, src, Options{MaxStale: -1})
	if _, err := c.Get(t.Context(), "app/db"); !errors.Is(err, outage) || !strings.Contains(err.Error(), "app/db") {
		t.Fatalf("first Get with the store down = %v, want the store's error naming the secret", err)
	}

	src.set("app/db", "one", nil)
	mustGet(t, c, "app/db")
	src.set("app/db", "one", outage)
	clock.Advance(2 * DefaultTTL)
	if _, err := c.Get(t.Context(), "app/db"); !errors.Is(err, outage) {
		t.Fatalf("Get with MaxStale < 0 = %v, want the store's error", err)
	}
	if len(rec.staleCalls()) != 0 {
		t.Fatal("OnStale called with stale serving disabled")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New accepted a nil source")
	}
	if _, err := New(&fakeSource{}, Options{Jitter: 1.5}); err == nil {
		t.Fatal("New accepted jitter over 1")
	}
}
