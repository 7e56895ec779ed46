package pgsink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/audit"
)

// maxAttempts bounds Append's transactions: serialization failures, deadlocks and a
// position taken by a writer that bypassed the lock are tried again, this many times in
// all.
const maxAttempts = 5

// retryBase is the first wait before another attempt; it doubles, with jitter.
const retryBase = 10 * time.Millisecond

// errPositionTaken is a unique violation on (chain, seq): another writer stored a record
// at the position this one sealed for, without taking the chain's lock.
var errPositionTaken = errors.New("the chain position was taken by another writer")

// Append implements audit.Sink: it seals r at the end of its chain and stores it in one
// transaction under the chain's advisory lock, unless a record with r.ID is stored.
func (s *Sink) Append(ctx context.Context, r audit.Record) (audit.Record, bool, error) {
	if err := r.Check(); err != nil {
		return audit.Record{}, false, err
	}
	chain := audit.ChainOf(r)
	var lastErr error
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return audit.Record{}, false, fail("append", err)
			}
		}
		stored, added, err := s.appendOnce(ctx, r, chain)
		switch {
		case err == nil:
			return stored, added, nil
		case sqlstate(err) == sqlstateUniqueViolation:
			// Another writer stored this event (UNIQUE(id)), or some record at our position
			// (the primary key), without the lock. The first is a retried event: answer with
			// what is stored, as if we had seen it under the lock.
			stored, found, rerr := s.byID(ctx, r.ID)
			if rerr != nil {
				return audit.Record{}, false, fail("append: read the record stored by another writer", rerr)
			}
			if found {
				return stored, false, nil
			}
			lastErr = errPositionTaken
		case sqlstate(err) == sqlstateSerializationFailure, sqlstate(err) == sqlstateDeadlockDetected:
			lastErr = err
		default:
			return audit.Record{}, false, fail("append", err)
		}
	}
	return audit.Record{}, false, fail(fmt.Sprintf("append: gave up after %d attempts", maxAttempts), lastErr)
}

// appendOnce is one attempt: lock the chain, look the event up, read the head, insert.
func (s *Sink) appendOnce(ctx context.Context, r audit.Record, chain string) (stored audit.Record, added bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return audit.Record{}, false, err
	}
	// A rollback after a commit does nothing; after an error it ends the transaction and
	// releases the chain's lock.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(s.schema, chain)); err != nil {
		return audit.Record{}, false, err
	}
	if stored, found, err := s.byID(ctx, r.ID, tx); err != nil || found {
		return stored, false, err
	}
	var (
		seq  int64
		body string
		prev string
	)
	switch err := tx.QueryRow(ctx, s.q.last, chain).Scan(&seq, &body); {
	case errors.Is(err, pgx.ErrNoRows):
		seq = 0
	case err != nil:
		return audit.Record{}, false, err
	default:
		last, err := decode(body)
		if err != nil {
			// Linking to a record we cannot read would hide where the damage is; the
			// operator runs `keyturn audit verify`.
			return audit.Record{}, false, fmt.Errorf("the last record of the chain (#%d) does not parse, so nothing can be linked to it: %w", seq, err)
		}
		prev = last.Hash
	}
	sealed := r.Seal(chain, seq+1, prev)
	line, err := sealed.MarshalLine()
	if err != nil {
		return audit.Record{}, false, fmt.Errorf("encode record: %w", err)
	}
	if s.beforeInsert != nil {
		s.beforeInsert(ctx, chain, sealed.Seq)
	}
	if _, err := tx.Exec(ctx, s.q.insert, chain, sealed.Seq, sealed.ID, sealed.Time, string(line[:len(line)-1])); err != nil {
		return audit.Record{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return audit.Record{}, false, err
	}
	return sealed, true, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// byID returns the record stored under id, through q when given (a transaction), else
// the pool.
func (s *Sink) byID(ctx context.Context, id string, q ...querier) (audit.Record, bool, error) {
	var db querier = s.pool
	if len(q) > 0 {
		db = q[0]
	}
	var (
		chain string
		seq   int64
		body  string
	)
	switch err := db.QueryRow(ctx, s.q.byID, id).Scan(&chain, &seq, &body); {
	case errors.Is(err, pgx.ErrNoRows):
		return audit.Record{}, false, nil
	case err != nil:
		return audit.Record{}, false, err
	}
	r, err := decode(body)
	if err != nil {
		// The event is stored, tampered with: report it stored, as it was read, rather than
		// appending it a second time.
		return unreadable(chain, seq), true, nil
	}
	return r, true, nil
}

// backoff waits before attempt (1-based after the first): retryBase doubled per attempt,
// from half to the full amount, so racing writers spread out.
func backoff(ctx context.Context, attempt int) error {
	d := retryBase << (attempt - 1)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
