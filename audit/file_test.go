package audit_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

func TestFileSinkConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Open {
		dir := t.TempDir()
		return func(t *testing.T) audit.Sink {
			s, err := audit.OpenFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// TestFileSinkDropsPartialLine: a writer that crashed mid-line (or ran out of disk) left
// a line without its newline. The next append drops it instead of gluing its record to it,
// so the acknowledged record is readable and the chain verifies.
func TestFileSinkDropsPartialLine(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := audit.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, audittest.Record("app-db", "e1", time.Now())); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "records.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"id":"e2","time":"2026-`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	for _, h := range []string{"p1", "p2"} { // two processes, neither saw the partial line
		other, err := audit.OpenFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := other.Append(ctx, audittest.Record("app-db", h, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Records(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if rep := audit.Verify(recs, nil, nil, nil); !rep.OK() || len(recs) != 3 {
		t.Fatalf("%d records after a partial line; verify: %v", len(recs), rep.Problems)
	}
}
