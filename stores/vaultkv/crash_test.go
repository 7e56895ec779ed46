package vaultkv

import (
	"testing"

	"github.com/keyturn/keyturn/secret"
)

// claim does what Promote does up to its claim in the staging document and stops, as a
// worker that crashed right after it would. With write it also writes the consumer path,
// as a worker that crashed before recording the ledger entry would.
func claim(t *testing.T, s *Store, id secret.ID, token secret.VersionToken, write bool) *promoteIntent {
	t.Helper()
	ctx := t.Context()
	st, err := s.load(ctx, id)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	entries, err := st.view()
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	e, ok := find(entries, byToken(token))
	if !ok || e.stage != secret.StagePending {
		t.Fatalf("%s is not pending: %+v", token, entries)
	}
	in := &promoteIntent{Token: token, To: st.kvCurrent + 1, From: fromPending, Record: e.raw}
	doc := st.doc
	doc.Promote = in
	if err := s.writeStaging(ctx, st, doc); err != nil {
		t.Fatalf("write claim: %v", err)
	}
	if write {
		data, err := s.intentData(ctx, st)
		if err != nil {
			t.Fatalf("intent data: %v", err)
		}
		if _, err := s.writeData(ctx, st.path, data, in.To-1); err != nil {
			t.Fatalf("write consumer path: %v", err)
		}
	}
	return in
}

func TestCrashAfterClaimIsFinishedByTheRetry(t *testing.T) {
	srv := server(t)
	s, c := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "crash-claim")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	stage(t, s, id, "v2", pw("two"), nil)
	claim(t, s, id, "v2", false)

	// Until someone finishes the claim, readers see the state before it.
	expectRead(t, s, id, secret.StageCurrent, "v1", pw("one"))
	expectRead(t, s, id, secret.StagePending, "v2", pw("two"))
	if data, _ := consumer(t, c, id); data["password"] != "one" {
		t.Fatal("the consumer path changed before the promotion was written")
	}

	// The workflow retries the Promote activity.
	promote(t, s, id, "v2")
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	expectRead(t, s, id, secret.StagePrevious, "v1", pw("one"))
	if data, _ := consumer(t, c, id); data["password"] != "two" {
		t.Fatal("the consumer path does not show v2")
	}
	expectNoClaim(t, s, id)
}

func TestCrashAfterConsumerWriteIsSeenAndRecorded(t *testing.T) {
	srv := server(t)
	s := newStore(t, srv)
	id := uniqueID(t, "crash-write")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	stage(t, s, id, "v2", pw("two"), nil)
	in := claim(t, s, id, "v2", true)

	// Consumers already read v2, so the store says so too.
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	expectRead(t, s, id, secret.StagePrevious, "v1", pw("one"))

	// Any writer finishes the claim first; here the next rotation's stage.
	stage(t, s, id, "v3", pw("three"), nil)
	expectNoClaim(t, s, id)
	st, err := s.load(t.Context(), id)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if st.ledger[in.To] == "" {
		t.Fatalf("ledger has no entry for KV version %d", in.To)
	}
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	expectRead(t, s, id, secret.StagePending, "v3", pw("three"))
	promote(t, s, id, "v3")
	expectRead(t, s, id, secret.StagePrevious, "v2", pw("two"))
}

func TestClaimOverAnOutsideWriteIsWithdrawn(t *testing.T) {
	srv := server(t)
	s, c := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "crash-outside")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	stage(t, s, id, "v2", pw("two"), nil)
	in := claim(t, s, id, "v2", false)
	// Someone writes the consumer path by hand while the claim waits.
	if _, err := s.writeData(t.Context(), string(id), map[string]any{"password": "by-hand"}, in.To-1); err != nil {
		t.Fatalf("outside write: %v", err)
	}

	// The retried promote withdraws the stale claim and promotes over the outside write.
	promote(t, s, id, "v2")
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	data, kv := consumer(t, c, id)
	if data["password"] != "two" || kv != in.To+1 {
		t.Fatalf("consumer path at KV version %d, want v2 at %d", kv, in.To+1)
	}
	expectNoClaim(t, s, id)
}

func expectNoClaim(t *testing.T, s *Store, id secret.ID) {
	t.Helper()
	st, err := s.load(t.Context(), id)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if st.doc.Promote != nil {
		t.Fatalf("a claim for %s is still in the staging document", st.doc.Promote.Token)
	}
}
