package pgsink

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

// TestUniqueBackstop: a writer that ignores the chain lock slips a record in between
// Append's read of the head and its insert. If it stored the same event, Append returns
// that record (added false); if it took the position with another event, Append tries
// again and links after it. Either way nothing errors, nothing is duplicated, and the
// chain verifies.
func TestUniqueBackstop(t *testing.T) {
	cases := map[string]struct {
		// intruderID is the event the lock-bypassing writer stores; "" means the same
		// event Append is storing.
		intruderID string
		wantAdded  bool
		wantSeq    int64
		wantIDs    []string
	}{
		"same event":            {wantAdded: false, wantSeq: 2, wantIDs: []string{"first", "ev"}},
		"other event, same seq": {intruderID: "intruder", wantAdded: true, wantSeq: 3, wantIDs: []string{"first", "intruder", "ev"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			schema := freshSchema(t)
			s := openWriter(t, schema)
			racer := connect(t, writerDSN(roles(t)))
			t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
			if _, _, err := s.Append(ctx, audittest.Record("app-db", "first", t0)); err != nil {
				t.Fatal(err)
			}
			ev := audittest.Record("app-db", "ev", t0.Add(time.Minute))
			intruder := ev
			if tc.intruderID != "" {
				intruder.ID = tc.intruderID
			}
			var once sync.Once
			s.beforeInsert = func(ctx context.Context, chain string, seq int64) {
				once.Do(func() { must(t, insertUnlocked(ctx, racer, s, chain, seq, intruder)) })
			}
			got, added, err := s.Append(ctx, ev)
			if err != nil {
				t.Fatalf("append lost a race to a lock-bypassing writer: %v", err)
			}
			if added != tc.wantAdded || got.Seq != tc.wantSeq || got.ID != "ev" {
				t.Fatalf("append: added=%v seq=%d id=%s, want added=%v seq=%d", added, got.Seq, got.ID, tc.wantAdded, tc.wantSeq)
			}
			all, err := s.Records(ctx, audit.Filter{})
			must(t, err)
			var ids []string
			for _, r := range all {
				ids = append(ids, r.ID)
			}
			if len(ids) != len(tc.wantIDs) {
				t.Fatalf("stored %v, want %v", ids, tc.wantIDs)
			}
			for i := range ids {
				if ids[i] != tc.wantIDs[i] {
					t.Fatalf("stored %v, want %v", ids, tc.wantIDs)
				}
			}
			if stored := all[got.Seq-1]; stored.Hash != got.Hash {
				t.Fatal("append returned a record other than the one stored")
			}
			if rep := audit.Verify(all, nil, nil, nil); !rep.OK() {
				t.Fatalf("verify: %v", rep.Problems)
			}
		})
	}
}

// insertUnlocked stores r at seq of chain, linked to the record before it, without the
// chain's lock: a writer that does not follow the protocol.
func insertUnlocked(ctx context.Context, conn *pgx.Conn, s *Sink, chain string, seq int64, r audit.Record) error {
	prev := ""
	if seq > 1 {
		var (
			lastSeq int64
			body    string
		)
		if err := conn.QueryRow(ctx, s.q.last, chain).Scan(&lastSeq, &body); err != nil {
			return err
		}
		last, err := decode(body)
		if err != nil {
			return err
		}
		prev = last.Hash
	}
	sealed := r.Seal(chain, seq, prev)
	line, err := sealed.MarshalLine()
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, s.q.insert, chain, seq, sealed.ID, sealed.Time, string(line[:len(line)-1]))
	return err
}
