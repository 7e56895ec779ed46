package pgsink

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/audit"
)

var _ audit.Sink = (*Sink)(nil)

// Sink is the audit trail in PostgreSQL. It is safe for concurrent use, and any number of
// Sinks (in any number of processes) may share one schema.
type Sink struct {
	pool   *pgxpool.Pool
	schema string
	q      queries

	// beforeInsert, when set (tests only), runs inside Append after the chain's head is
	// read and before the insert: where a writer that bypasses the lock could slip in.
	beforeInsert func(ctx context.Context, chain string, seq int64)
}

// queries are the sink's statements with the schema filled in.
type queries struct {
	byID, last, insert, records, heads, addCheckpoint, checkpoints, probe string
}

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	r := func(q string) string { return strings.ReplaceAll(q, "{{S}}", s) }
	return queries{
		byID:   r(`SELECT chain, seq, body FROM {{S}}.records WHERE id = $1`),
		last:   r(`SELECT seq, body FROM {{S}}.records WHERE chain = $1 ORDER BY seq DESC LIMIT 1`),
		insert: r(`INSERT INTO {{S}}.records (chain, seq, id, time, body) VALUES ($1, $2, $3, $4, $5)`),
		// The WHERE clause is added by Records.
		records: r(`SELECT chain, seq, body FROM {{S}}.records`),
		// A loose index scan over the primary key: the next chain name after the last one,
		// then that chain's last record, so the cost grows with the number of chains and
		// not with the number of records (DISTINCT ON would read every record).
		heads: r(`WITH RECURSIVE chains(chain) AS (
    (SELECT chain FROM {{S}}.records ORDER BY chain LIMIT 1)
    UNION ALL
    SELECT (SELECT r.chain FROM {{S}}.records r WHERE r.chain > c.chain ORDER BY r.chain LIMIT 1)
    FROM chains c WHERE c.chain IS NOT NULL
)
SELECT l.chain, l.seq, l.body
FROM chains c
CROSS JOIN LATERAL (
    SELECT r.chain, r.seq, r.body FROM {{S}}.records r WHERE r.chain = c.chain ORDER BY r.seq DESC LIMIT 1
) l
ORDER BY l.chain`),
		addCheckpoint: r(`INSERT INTO {{S}}.checkpoints (time, body) VALUES ($1, $2)`),
		checkpoints:   r(`SELECT body FROM {{S}}.checkpoints ORDER BY id`),
		probe:         r(`SELECT 1 FROM {{S}}.records, {{S}}.checkpoints LIMIT 0`),
	}
}

// Open connects to the sink in schema (DefaultSchema when empty) over dsn, which should be
// the workers' role (SELECT and INSERT only; see Install). It checks that the schema is
// installed and readable, so a misconfigured worker fails at start, not at its first
// rotation.
func Open(ctx context.Context, dsn, schema string) (*Sink, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("open", err)
	}
	s := &Sink{pool: pool, schema: schema, q: newQueries(schema)}
	if _, err := pool.Exec(ctx, s.q.probe); err != nil {
		pool.Close()
		switch sqlstate(err) {
		case sqlstateUndefinedTable, sqlstateInvalidSchemaName:
			return nil, fail("open", errNotInstalled)
		}
		return nil, fail("open", err)
	}
	return s, nil
}

// Close implements audit.Sink: it closes the connection pool.
func (s *Sink) Close() error {
	s.pool.Close()
	return nil
}
