// Package priority lets a worker's background work step aside while urgent work runs in
// the same process: the secret sweep (thousands of store reads and Temporal calls) waits
// while an incident's containment batches run, since a leaked credential must be refused
// before the age gauges are refreshed.
package priority

import (
	"context"
	"sync"
	"time"
)

// Linger is how long the gate stays closed after the last urgent work ended: an
// incident's batches come in waves, and background work that slipped in between two of
// them would only slow the next.
const Linger = time.Second

// Gate counts the urgent work running. Background work calls Wait before each piece of
// work; urgent work calls Urgent and the function it returns when done. A nil *Gate
// holds nothing back. The zero Gate is ready to use.
type Gate struct {
	mu      sync.Mutex
	running int
	// open is closed when no urgent work has run for Linger; a fresh channel while any
	// does.
	open chan struct{}
}

// Urgent marks urgent work as running until done is called (once; later calls do
// nothing).
func (g *Gate) Urgent() (done func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	if g.running == 0 { // the last channel, if any, was closed when running fell to 0
		g.open = make(chan struct{})
	}
	g.running++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() { time.AfterFunc(Linger, g.release) })
	}
}

// release ends one urgent work, Linger after it was done.
func (g *Gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.running == 0 {
		close(g.open)
	}
}

// Busy reports whether urgent work is running (or ended less than Linger ago).
func (g *Gate) Busy() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running > 0
}

// Wait returns at once when no urgent work runs, otherwise once none has run for
// Linger, or with ctx's error when ctx ends first. It reports how long it waited.
func (g *Gate) Wait(ctx context.Context) (time.Duration, error) {
	if g == nil {
		return 0, nil
	}
	g.mu.Lock()
	running, open := g.running, g.open
	g.mu.Unlock()
	if running == 0 {
		return 0, nil
	}
	start := time.Now()
	select {
	case <-open:
		return time.Since(start), nil
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}
