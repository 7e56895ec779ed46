package secretstate_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/priority"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// TestObserveStandsAsideForUrgentWork: with its Gate held (the worker containing an
// incident's scope), an observation reads nothing until the urgent work has ended and
// lingered, and says how long it stood aside.
func TestObserveStandsAsideForUrgentWork(t *testing.T) {
	inv, store := freshInventory(t)
	reads := &countingStores{Stores: binding.New(inv, binding.Backends{File: store})}
	gate := &priority.Gate{}
	o := secretstate.Observer{Inventory: inv, Stores: reads, Gate: gate}
	done := gate.Urgent()
	observed := make(chan secretstate.Observation, 1)
	go func() { observed <- o.Observe(context.Background(), "files/fresh") }()
	time.Sleep(300 * time.Millisecond)
	if n := reads.n.Load(); n != 0 {
		t.Fatalf("%d store(s) opened while urgent work ran; want none", n)
	}
	done()
	obs := <-observed
	if reads.n.Load() != 1 || byID(obs, "files/fresh").Current == nil {
		t.Fatalf("after the urgent work: %d store(s) opened, %s", reads.n.Load(), dump(byID(obs, "files/fresh")))
	}
	if obs.Yielded < priority.Linger {
		t.Fatalf("the observation says it stood aside %s; it waited at least %s", obs.Yielded, priority.Linger)
	}
}

// countingStores counts the stores opened.
type countingStores struct {
	secretstate.Stores
	n atomic.Int32
}

func (c *countingStores) Store(ctx context.Context, id secret.ID) (stores.Store, error) {
	c.n.Add(1)
	return c.Stores.Store(ctx, id)
}
