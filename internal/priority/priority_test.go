package priority

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitReturnsAtOnceWhenNothingIsUrgent(t *testing.T) {
	var g Gate
	if waited, err := g.Wait(context.Background()); waited != 0 || err != nil {
		t.Fatalf("Wait on an idle gate: waited %s, %v; want at once", waited, err)
	}
	var none *Gate
	none.Urgent()()
	if waited, err := none.Wait(context.Background()); waited != 0 || err != nil || none.Busy() {
		t.Fatalf("a nil gate held something back: waited %s, %v", waited, err)
	}
}

// TestWaitHoldsUntilTheUrgentWorkEndedAndLingered: background work waits while urgent
// work runs and for Linger after the last of it, so that it does not slip in between two
// waves of an incident's batches.
func TestWaitHoldsUntilTheUrgentWorkEndedAndLingered(t *testing.T) {
	var g Gate
	first, second := g.Urgent(), g.Urgent()
	released := make(chan time.Duration, 1)
	go func() {
		waited, err := g.Wait(context.Background())
		if err != nil {
			t.Error(err)
		}
		released <- waited
	}()
	first()
	first() // a second call does nothing
	time.Sleep(Linger + 200*time.Millisecond)
	select {
	case <-released:
		t.Fatal("Wait returned while urgent work still ran")
	default:
	}
	if !g.Busy() {
		t.Fatal("Busy is false while urgent work runs")
	}
	ended := time.Now()
	second()
	waited := <-released
	if since := time.Since(ended); since < Linger {
		t.Fatalf("Wait returned %s after the last urgent work ended; want at least Linger (%s)", since, Linger)
	}
	if waited < Linger {
		t.Fatalf("Wait reported %s; it waited at least Linger after the last urgent work", waited)
	}
	if g.Busy() {
		t.Fatal("Busy after the urgent work ended and lingered")
	}
	// The gate closes again for the next urgent work.
	done := g.Urgent()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait during new urgent work: %v; want the context's deadline", err)
	}
	done()
}
