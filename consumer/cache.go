package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyturn/keyturn/secret"
)

// Defaults applied by New for zero fields of Options.
const (
	// DefaultTTL is how long a value is served before it is read again. Keep it well
	// under the rotation's grace period (see the package doc).
	DefaultTTL = time.Minute
	// DefaultJitter spreads refreshes over ±10% of the TTL, so a fleet started together
	// does not read the store in lockstep.
	DefaultJitter = 0.1
	// DefaultMaxStale is how old the last good value may be and still be served while
	// the store cannot be read.
	DefaultMaxStale = 10 * time.Minute
	// DefaultRetryAfter is how long a failed refresh is not retried while a stale value
	// is served, so an outage costs the store one read per secret per interval, not one
	// per Get.
	DefaultRetryAfter = 5 * time.Second
	// DefaultReadTimeout bounds one read of the store.
	DefaultReadTimeout = 30 * time.Second
)

// Options tune a Cache. The zero value uses the defaults above.
type Options struct {
	// TTL is how long a value is served before the next Get reads the store again.
	TTL time.Duration
	// Jitter is the fraction of TTL (0 to 1) by which each value's lifetime varies at
	// random, both ways. Negative: none.
	Jitter float64
	// MaxStale bounds stale-on-error: when a refresh fails, the last good value is
	// served while it was read less than MaxStale ago; after that Get returns the error.
	// Negative: never serve a stale value. Set it above TTL, and below the rotation's
	// grace period (a value older than that may already be revoked).
	MaxStale time.Duration
	// RetryAfter is how long after a failed refresh the stale value is served without
	// trying the store again.
	RetryAfter time.Duration
	// ReadTimeout bounds one read of the store. A read is shared by every Get waiting for
	// it, so it runs on its own deadline, not a caller's.
	ReadTimeout time.Duration
	// OnStale, when set, is called once per failed refresh that left a stale value in
	// service: the secret, the value's age and the store's error (which names the secret
	// and never holds material). Export it as a metric or a log line.
	OnStale func(id secret.ID, age time.Duration, err error)
	// OnError, when set, is called for every failed read of the store, stale value or
	// not.
	OnError func(id secret.ID, err error)
	// Now is the clock; time.Now when nil. Tests pass a fake one.
	Now func() time.Time
}

// Cache serves the current value of secrets from a Source, reading each at most once
// per TTL. It is safe for concurrent use.
type Cache struct {
	src  Source
	opts Options
	// flight lets one read per secret run at a time; the others wait for its result.
	flight singleflight.Group

	mu      sync.Mutex
	entries map[secret.ID]*entry
}

// entry is what the cache knows of one secret.
type entry struct {
	value     Value     // last good value; zero when none was ever read
	has       bool      // value is set
	expires   time.Time // when value stops being fresh
	nextRetry time.Time // while serving stale: no read before this
}

// New returns a Cache reading from src.
func New(src Source, opts Options) (*Cache, error) {
	if src == nil {
		return nil, errNoSource
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	switch {
	case opts.Jitter == 0:
		opts.Jitter = DefaultJitter
	case opts.Jitter < 0:
		opts.Jitter = 0
	case opts.Jitter > 1:
		return nil, fmt.Errorf("consumer: jitter %v is over 1", opts.Jitter)
	}
	if opts.MaxStale == 0 {
		opts.MaxStale = DefaultMaxStale
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{src: src, opts: opts, entries: map[secret.ID]*entry{}}, nil
}

// Get returns the current value of the secret: from the cache while it is fresh, else
// from the store. When the store cannot be read it returns the last good value if that
// was read less than MaxStale ago (and calls OnStale), else an error that names the
// secret. Concurrent Gets of one secret share one read.
func (c *Cache) Get(ctx context.Context, id secret.ID) (Value, error) {
	if v, ok := c.cached(id); ok {
		return v, nil
	}
	ch := c.flight.DoChan(string(id), func() (any, error) { return c.refresh(ctx, id) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return Value{}, r.Err
		}
		return r.Val.(Value), nil
	case <-ctx.Done():
		return Value{}, fmt.Errorf("get %s: %w", id, ctx.Err())
	}
}

// Invalidate makes the next Get of the secret read the store, as after a login refused
// with the cached password. The last good value stays eligible for stale-on-error:
// during a store outage it is still the best guess, and OnStale says it is being served.
func (c *Cache) Invalidate(id secret.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		e.expires = time.Time{}
		e.nextRetry = time.Time{}
	}
}

// cached returns the value to serve without reading the store: a fresh one, or a stale
// one while a failed refresh waits out RetryAfter.
func (c *Cache) cached(id secret.ID) (Value, bool) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e != nil && e.has && (now.Before(e.expires) || (now.Before(e.nextRetry) && c.servable(e, now))) {
		return e.value, true
	}
	return Value{}, false
}

// refresh reads the store once for every Get waiting on id. The read runs on its own
// deadline, detached from the first caller's cancellation, because other callers share it.
func (c *Cache) refresh(ctx context.Context, id secret.ID) (Value, error) {
	// A Get that missed the cache just before another read finished starts a flight of
	// its own; it must not read the store a second time.
	if v, ok := c.cached(id); ok {
		return v, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.ReadTimeout)
	defer cancel()
	v, err := c.src.Current(rctx, id)
	now := c.opts.Now()

	c.mu.Lock()
	e := c.entries[id]
	if e == nil {
		e = &entry{}
		c.entries[id] = e
	}
	if err == nil {
		// Age is measured on the cache's clock, whatever the source stamped.
		v.ReadAt = now
		e.value, e.has = v, true
		e.expires = now.Add(c.lifetime())
		e.nextRetry = time.Time{}
		c.mu.Unlock()
		return v, nil
	}
	stale, had := e.value, e.has
	servable := had && c.servable(e, now)
	if servable {
		e.nextRetry = now.Add(c.opts.RetryAfter)
	}
	c.mu.Unlock()

	if c.opts.OnError != nil {
		c.opts.OnError(id, err)
	}
	if servable {
		if c.opts.OnStale != nil {
			c.opts.OnStale(id, now.Sub(stale.ReadAt), err)
		}
		return stale, nil
	}
	if had {
		return Value{}, fmt.Errorf("get %s: the last good value, read %s ago, is older than MaxStale %s: %w",
			id, now.Sub(stale.ReadAt).Round(time.Second), c.opts.MaxStale, err)
	}
	return Value{}, fmt.Errorf("get %s: %w", id, err)
}

// freshUntil returns when id's cached value stops being served without reading the
// store: its expiry, or while a stale value waits out RetryAfter, the next retry. Zero
// when nothing is cached.
func (c *Cache) freshUntil(id secret.ID) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || !e.has {
		return time.Time{}
	}
	if e.nextRetry.After(e.expires) {
		return e.nextRetry
	}
	return e.expires
}

// servable reports whether e's last good value may still be served stale. Callers hold mu.
func (c *Cache) servable(e *entry, now time.Time) bool {
	return c.opts.MaxStale > 0 && now.Sub(e.value.ReadAt) < c.opts.MaxStale
}

// lifetime is the TTL varied by up to ±Jitter.
func (c *Cache) lifetime() time.Duration {
	j := c.opts.Jitter * (2*rand.Float64() - 1)
	return time.Duration(float64(c.opts.TTL) * (1 + j))
}
