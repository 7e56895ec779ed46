package pgsink

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
	"github.com/keyturn/keyturn/secret"
)

// TestConcurrentWritersCounted is the conformance suite's concurrency test at a larger
// scale: 8 writers, each its own pool (a worker process), 200 events each over 20 chains,
// every event appended by two writers. Counted: events stored, duplicates, events lost,
// and appends that reported adding (exactly one per event).
func TestConcurrentWritersCounted(t *testing.T) {
	const writers, perWriter, chains = 8, 200, 20
	schema := freshSchema(t)
	handles := make([]*Sink, writers)
	for i := range handles {
		handles[i] = openWriter(t, schema)
	}
	ctx := t.Context()
	var (
		wg     sync.WaitGroup
		added  atomic.Int64
		errs   = make(chan error, writers)
		start  = time.Now()
		events = writers / 2 * perWriter
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := secret.ID(fmt.Sprintf("svc-%02d", i%chains))
				// Writers w and w^1 write the same events, each a retry of the other's.
				eid := fmt.Sprintf("evt-%d-%03d", w/2, i)
				_, ok, err := handles[w].Append(ctx, audittest.Record(id, eid, time.Now()))
				if err != nil {
					errs <- err
					return
				}
				if ok {
					added.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := handles[0].Records(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range all {
		ids[r.ID]++
	}
	dups, lost := len(all)-len(ids), 0
	for p := range writers / 2 {
		for i := range perWriter {
			if ids[fmt.Sprintf("evt-%d-%03d", p, i)] == 0 {
				lost++
			}
		}
	}
	heads, err := handles[1].Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Verify(all, nil, nil, nil)
	t.Logf("%d writers x %d appends over %d chains (%d distinct events, each appended twice) in %v: %d records, %d distinct, %d duplicates, %d lost, %d appends reported added, %d chain heads, verify ok=%v",
		writers, perWriter, chains, events, elapsed.Round(time.Millisecond), len(all), len(ids), dups, lost, added.Load(), len(heads), rep.OK())
	if len(ids) != events || dups != 0 || lost != 0 || added.Load() != int64(events) {
		t.Fatalf("want %d distinct, 0 duplicates, 0 lost, %d added", events, events)
	}
	if len(heads) != chains {
		t.Errorf("%d heads, want %d", len(heads), chains)
	}
	if !rep.OK() {
		t.Fatalf("chains written concurrently do not verify: %v", rep.Problems)
	}
}
