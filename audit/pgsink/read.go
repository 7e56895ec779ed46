package pgsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/audit"
)

// timeSlack widens a time filter pushed into SQL: the time column holds microseconds and
// the body nanoseconds, so the query may return a record just outside the range, and
// Filter.Match, over the body, decides.
const timeSlack = time.Microsecond

// Records implements audit.Sink: records in (chain, seq) order, decoded from their bodies
// as stored. The query narrows by chain and time; Filter.Match over the decoded record
// decides. A body that does not parse is returned as a record holding only its place, so
// Verify reports it.
func (s *Sink) Records(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	q := s.q.records + " WHERE true"
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Chains) > 0 {
		q += " AND chain = ANY(" + arg(f.Chains) + ")"
	}
	if f.SecretID != "" {
		// A record of a secret is always in that secret's chain.
		q += " AND chain = " + arg(audit.ChainOf(audit.Record{SecretID: f.SecretID}))
	}
	if !f.Since.IsZero() {
		q += " AND time >= " + arg(f.Since.Add(-timeSlack))
	}
	if !f.Until.IsZero() {
		q += " AND time <= " + arg(f.Until.Add(timeSlack))
	}
	q += " ORDER BY chain, seq"
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fail("read records", err)
	}
	var out []audit.Record
	var (
		chain, body string
		seq         int64
	)
	_, err = pgx.ForEachRow(rows, []any{&chain, &seq, &body}, func() error {
		r, err := decode(body)
		if err != nil {
			out = append(out, unreadable(chain, seq))
			return nil
		}
		if f.Match(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fail("read records", err)
	}
	return out, nil
}

// Heads implements audit.Sink: the last record of every chain, by chain name.
func (s *Sink) Heads(ctx context.Context) ([]audit.Head, error) {
	rows, err := s.pool.Query(ctx, s.q.heads)
	if err != nil {
		return nil, fail("read chain heads", err)
	}
	var out []audit.Head
	var (
		chain, body string
		seq         int64
	)
	_, err = pgx.ForEachRow(rows, []any{&chain, &seq, &body}, func() error {
		// An unreadable last record gives an empty hash: a checkpoint signed over it
		// cannot match anything, and Verify reports the record itself.
		r, _ := decode(body)
		out = append(out, audit.Head{Chain: chain, Count: seq, Hash: r.Hash})
		return nil
	})
	if err != nil {
		return nil, fail("read chain heads", err)
	}
	return out, nil
}

// AddCheckpoint implements audit.Sink.
func (s *Sink) AddCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit postgres: encode checkpoint: %w", err)
	}
	if _, err := s.pool.Exec(ctx, s.q.addCheckpoint, c.Time, string(b)); err != nil {
		return fail("store checkpoint", err)
	}
	return nil
}

// Checkpoints implements audit.Sink: every checkpoint in the order stored. A body that
// does not parse is returned as an unsigned checkpoint, which Verify reports.
func (s *Sink) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, s.q.checkpoints)
	if err != nil {
		return nil, fail("read checkpoints", err)
	}
	var out []audit.Checkpoint
	var body string
	_, err = pgx.ForEachRow(rows, []any{&body}, func() error {
		var c audit.Checkpoint
		if json.Unmarshal([]byte(body), &c) != nil {
			c = audit.Checkpoint{KeyID: audit.UnreadableChain}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fail("read checkpoints", err)
	}
	return out, nil
}

// decode parses a stored body.
func decode(body string) (audit.Record, error) {
	var r audit.Record
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return audit.Record{}, fmt.Errorf("decode stored record: %w", err)
	}
	return r, nil
}

// unreadable stands for a record whose body does not parse: its place, and no hash, so
// Verify reports it there.
func unreadable(chain string, seq int64) audit.Record {
	return audit.Record{Chain: chain, Seq: seq, Error: fmt.Sprintf("the stored body of %s #%d does not parse", chain, seq)}
}
