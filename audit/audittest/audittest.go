// Package audittest is the conformance suite every audit.Sink runs: idempotent appends,
// linked chains, concurrent writers that lose and duplicate nothing, filters, and
// checkpoints that verify.
package audittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/secret"
)

// Open returns a new handle on one sink; handles from one call of Run share the sink's
// storage (as separate worker processes would), and each test gets fresh storage from a
// new Run subtest through Fresh.
type Open func(t *testing.T) audit.Sink

// Fresh returns an Open over new, empty storage.
type Fresh func(t *testing.T) Open

// Record builds a step record for secret id with event ID eid.
func Record(id secret.ID, eid string, t time.Time) audit.Record {
	return audit.Record{
		ID: eid, Time: t, Event: audit.EventStepSucceeded, Step: "create",
		Actor: audit.Actor{Type: audit.ActorOperator, Name: "alice"}, Reason: "routine",
		SecretID: id, Kind: "postgres", VersionToken: secret.VersionToken("rotate/" + string(id) + "/run"), VersionNumber: 2,
		Handles: map[string]string{"role": "app_b"}, WorkflowID: "rotate/" + string(id), RunID: "run",
	}
}

// Run runs the suite.
func Run(t *testing.T, fresh Fresh) {
	t.Run("AppendSealsAndLinks", func(t *testing.T) { appendSealsAndLinks(t, fresh(t)) })
	t.Run("RetriedAppendIsNoOp", func(t *testing.T) { retriedAppendIsNoOp(t, fresh(t)) })
	t.Run("ConcurrentWritersLoseAndDuplicateNothing", func(t *testing.T) { concurrentWriters(t, fresh(t)) })
	t.Run("ConcurrentAppendsOnOneHandle", func(t *testing.T) { concurrentOnOneHandle(t, fresh(t)) })
	t.Run("Filters", func(t *testing.T) { filters(t, fresh(t)) })
	t.Run("CheckpointsVerify", func(t *testing.T) { checkpointsVerify(t, fresh(t)) })
}

func appendSealsAndLinks(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	now := time.Now()
	a, added, err := s.Append(ctx, Record("app-db", "e1", now))
	must(t, err)
	if !added || a.Seq != 1 || a.Prev != "" || a.Chain != "secret/app-db" || a.Hash != a.ComputeHash() {
		t.Fatalf("first record: added=%v seq=%d prev=%q chain=%q", added, a.Seq, a.Prev, a.Chain)
	}
	b, _, err := s.Append(ctx, Record("app-db", "e2", now.Add(time.Second)))
	must(t, err)
	if b.Seq != 2 || b.Prev != a.Hash {
		t.Fatalf("second record: seq=%d, prev links to first: %v", b.Seq, b.Prev == a.Hash)
	}
	c, _, err := s.Append(ctx, Record("other", "e3", now))
	must(t, err)
	if c.Seq != 1 || c.Prev != "" {
		t.Fatalf("a new secret starts its own chain: seq=%d prev=%q", c.Seq, c.Prev)
	}
	heads, err := s.Heads(ctx)
	must(t, err)
	want := map[string]audit.Head{"secret/app-db": {Chain: "secret/app-db", Count: 2, Hash: b.Hash}, "secret/other": {Chain: "secret/other", Count: 1, Hash: c.Hash}}
	if len(heads) != len(want) {
		t.Fatalf("heads = %+v, want %+v", heads, want)
	}
	for _, h := range heads {
		if want[h.Chain] != h {
			t.Errorf("head %+v, want %+v", h, want[h.Chain])
		}
	}
	if _, _, err := s.Append(ctx, audit.Record{Event: audit.EventPut, Time: now}); err == nil {
		t.Error("a record without an ID was stored")
	}
}

func retriedAppendIsNoOp(t *testing.T, open Open) {
	s1, s2 := open(t), open(t)
	ctx := t.Context()
	r := Record("app-db", "rotate/app-db|run|5|started", time.Now())
	first, added, err := s1.Append(ctx, r)
	must(t, err)
	if !added {
		t.Fatal("the first append reported the record as already stored")
	}
	// The retry comes later, from another worker, with a later time.
	r.Time = r.Time.Add(time.Minute)
	again, added, err := s2.Append(ctx, r)
	must(t, err)
	if added || again.Hash != first.Hash || again.Seq != first.Seq {
		t.Fatalf("retried append: added=%v seq=%d (first %d), same hash %v", added, again.Seq, first.Seq, again.Hash == first.Hash)
	}
	all, err := s1.Records(ctx, audit.Filter{})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("%d records stored for one event, want 1", len(all))
	}
}

// concurrentWriters appends from several handles (processes, in production) at once,
// to a few chains, each event twice: every event must be stored exactly once, and every
// chain must verify.
func concurrentWriters(t *testing.T, open Open) {
	const writers, perWriter, chains = 6, 40, 3
	ctx := t.Context()
	handles := make([]audit.Sink, writers)
	for i := range handles {
		handles[i] = open(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := secret.ID(fmt.Sprintf("svc-%d", i%chains))
				// Writers w and w^1 write the same events: each is a retry of the other.
				eid := fmt.Sprintf("evt-%d-%d", w/2, i)
				if _, _, err := handles[w].Append(ctx, Record(id, eid, time.Now())); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := handles[0].Records(ctx, audit.Filter{})
	must(t, err)
	wantEvents := writers / 2 * perWriter
	ids := map[string]int{}
	for _, r := range all {
		ids[r.ID]++
	}
	dups := 0
	for _, n := range ids {
		dups += n - 1
	}
	t.Logf("%d writers appended %d events twice each: %d records stored, %d distinct, %d duplicated", writers, wantEvents, len(all), len(ids), dups)
	if len(ids) != wantEvents || dups != 0 {
		t.Fatalf("stored %d distinct events (want %d) and %d duplicates (want 0)", len(ids), wantEvents, dups)
	}
	if rep := audit.Verify(all, nil, nil, nil); !rep.OK() {
		t.Fatalf("chains written concurrently do not verify: %v", rep.Problems)
	}
}

// concurrentOnOneHandle appends from many goroutines through one handle (a worker's
// steps and containment batches share one), each event twice: each must be stored once,
// reported as added once, and the chains must verify.
func concurrentOnOneHandle(t *testing.T, open Open) {
	const goroutines, perGoroutine, chains = 16, 30, 4
	ctx := t.Context()
	h := open(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := map[string]int{}
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				id := secret.ID(fmt.Sprintf("svc-%d", i%chains))
				eid := fmt.Sprintf("evt-%d-%d", g/2, i) // goroutines g and g^1 write the same events
				_, isNew, err := h.Append(ctx, Record(id, eid, time.Now()))
				if err != nil {
					errs <- err
					return
				}
				if isNew {
					mu.Lock()
					added[eid]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := h.Records(ctx, audit.Filter{})
	must(t, err)
	want := goroutines / 2 * perGoroutine
	stored := map[string]int{}
	for _, r := range all {
		stored[r.ID]++
	}
	if len(all) != want || len(stored) != want {
		t.Fatalf("%d goroutines appended %d events twice each: %d records stored, %d distinct", goroutines, want, len(all), len(stored))
	}
	for eid, n := range added {
		if n != 1 {
			t.Errorf("event %s was reported added %d times", eid, n)
		}
	}
	if len(added) != want {
		t.Errorf("%d events reported added, want %d", len(added), want)
	}
	if rep := audit.Verify(all, nil, nil, nil); !rep.OK() {
		t.Fatalf("chains appended concurrently through one handle do not verify: %v", rep.Problems)
	}
}

func filters(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r1 := Record("app-db", "f1", t0)
	r2 := Record("api-key", "f2", t0.Add(time.Hour))
	r2.Actor = audit.Actor{Type: audit.ActorIncident, Name: "inc-7"}
	r2.IncidentID = "inc-7"
	r3 := Record("app-db", "f3", t0.Add(2*time.Hour))
	r3.Actor = audit.Actor{Type: audit.ActorSchedule, Name: "app-db"}
	for _, r := range []audit.Record{r1, r2, r3} {
		_, _, err := s.Append(ctx, r)
		must(t, err)
	}
	cases := map[string]struct {
		f    audit.Filter
		want []string
	}{
		"all":          {audit.Filter{}, []string{"f1", "f2", "f3"}},
		"secret":       {audit.Filter{SecretID: "app-db"}, []string{"f1", "f3"}},
		"chain":        {audit.Filter{Chains: []string{"secret/api-key"}}, []string{"f2"}},
		"incident":     {audit.Filter{IncidentID: "inc-7"}, []string{"f2"}},
		"actor type":   {audit.Filter{Actor: "operator"}, []string{"f1"}},
		"actor exact":  {audit.Filter{Actor: "schedule:app-db"}, []string{"f3"}},
		"since":        {audit.Filter{Since: t0.Add(30 * time.Minute)}, []string{"f2", "f3"}},
		"until":        {audit.Filter{Until: t0.Add(90 * time.Minute)}, []string{"f1", "f2"}},
		"nothing here": {audit.Filter{SecretID: "nope"}, nil},
	}
	for name, c := range cases {
		got, err := s.Records(ctx, c.f)
		must(t, err)
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(sorted(ids)) != fmt.Sprint(sorted(c.want)) {
			t.Errorf("%s: got %v, want %v", name, ids, c.want)
		}
	}
}

func checkpointsVerify(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	signer := audit.NewSigner(priv)
	cp := audit.Checkpointer{Sink: s, Signer: signer}
	for i := range 3 {
		_, _, err := s.Append(ctx, Record("app-db", fmt.Sprint("c", i), time.Now()))
		must(t, err)
	}
	_, signed, err := cp.Checkpoint(ctx, time.Now())
	must(t, err)
	if !signed {
		t.Fatal("no checkpoint signed over new records")
	}
	if _, again, err := cp.Checkpoint(ctx, time.Now()); err != nil || again {
		t.Fatalf("a checkpoint with nothing new: signed=%v err=%v", again, err)
	}
	_, _, err = s.Append(ctx, Record("other", "c9", time.Now()))
	must(t, err)
	_, _, err = cp.Checkpoint(ctx, time.Now())
	must(t, err)
	cps, err := s.Checkpoints(ctx)
	must(t, err)
	if len(cps) != 2 || len(cps[1].Heads) != 1 || cps[1].Heads[0].Chain != "secret/other" {
		t.Fatalf("checkpoints = %+v: want two, the second over the one chain that moved", cps)
	}
	all, err := s.Records(ctx, audit.Filter{})
	must(t, err)
	rep := audit.Verify(all, cps, []ed25519.PublicKey{signer.Public()}, nil)
	if !rep.OK() || rep.Trusted != 2 || rep.Uncovered != 0 {
		t.Fatalf("verify: %+v", rep)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if rep := audit.Verify(all, cps, []ed25519.PublicKey{other.Public().(ed25519.PublicKey)}, nil); rep.OK() {
		t.Fatal("checkpoints verified with a key that did not sign them")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
