// Package pgxconsumer logs pgx and pgxpool connections in to PostgreSQL with a password
// Keyturn rotates, read through a consumer.Cache.
//
// It is a package of its own so that consumer does not make every application import
// pgx.
//
// Every new connection takes the cache's current value: the password (field
// "password") and, when the version's metadata names one, the user ("username", else
// "role"). Keyturn's alternating strategy switches between two twin login roles, so the
// user changes with the version and must come from the secret, not from the DSN.
//
// When PostgreSQL refuses the login with SQLSTATE 28P01 (invalid_password), the cached
// value is older than the password the server holds: the secret is invalidated in the
// cache and the connect is tried once more with a fresh read. pgxpool's BeforeConnect
// cannot retry a connect (the pool calls pgx.ConnectConfig after it and hands the error to
// the caller), so the retry lives in Pool, which wraps *pgxpool.Pool and repeats an
// operation whose connect was refused. That is always safe: no statement was sent.
//
// # Pool lifetimes and the grace period
//
// A pool keeps connections opened with the old password after the cache has moved on.
// Set pgxpool.Config.MaxConnLifetime (plus MaxConnLifetimeJitter) shorter than the
// rotation's grace period, with a margin, so that every connection has been reopened with
// the new version before the old one is revoked: with a 1h grace, 30 minutes. A revoke
// with rotators/postgres's TerminateSessions ends the old role's sessions, and a pool that
// still holds them loses them.
//
// Errors never carry the password: a refused connect's pgconn.ConnectError has its
// configuration's password cleared before it is returned.
package pgxconsumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

// The fields and metadata keys rotators/postgres writes (copied, not imported, to keep
// the rotator out of consumers' binaries; a test checks they match).
const (
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
	// MetadataUsername is the metadata key naming the user to log in as.
	MetadataUsername = "username"
	// MetadataRole is the login role the version's password belongs to; used when
	// MetadataUsername is absent.
	MetadataRole = "role"
)

// codeInvalidPassword is SQLSTATE 28P01, invalid_password.
const codeInvalidPassword = "28P01"

// Options tune a Hook. The zero value is ready to use.
type Options struct {
	// OnRetry, when set, is called each time a connect refused with 28P01 is retried
	// after invalidating the secret: the secret and the refusal (which holds no
	// password). Count it as a metric: steady retries mean the cache's TTL is longer
	// than the rotation's grace period, or the store is behind the database.
	OnRetry func(id secret.ID, err error)
}

// Hook supplies the login of one secret to new connections. It is safe for concurrent
// use.
type Hook struct {
	cache *consumer.Cache
	id    secret.ID
	opts  Options
}

// New returns a Hook logging in with secret id, read through cache.
func New(cache *consumer.Cache, id secret.ID, opts Options) *Hook {
	return &Hook{cache: cache, id: id, opts: opts}
}

// BeforeConnect sets cfg's password, and its user when the version names one, from the
// cache's current value. It has the signature of pgxpool.Config.BeforeConnect; on its own
// it does not retry a refused login (use Pool or Connect for that).
func (h *Hook) BeforeConnect(ctx context.Context, cfg *pgx.ConnConfig) error {
	v, err := h.cache.Get(ctx, h.id)
	if err != nil {
		return fmt.Errorf("postgres login from secret: %w", err)
	}
	password := v.Field(FieldPassword).Reveal()
	if password == "" {
		return fmt.Errorf("postgres login from secret %s: version %d has no %q field", h.id, v.Version.Number, FieldPassword)
	}
	if user := v.Version.Metadata[MetadataUsername]; user != "" {
		cfg.User = user
	} else if role := v.Version.Metadata[MetadataRole]; role != "" {
		cfg.User = role
	}
	cfg.Password = password
	return nil
}

// Connect opens one connection with cfg and the secret's current login, retrying once
// with a fresh read when the password is refused. cfg is not modified.
func (h *Hook) Connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	return retry(h, func() (*pgx.Conn, error) {
		c := cfg.Copy()
		if err := h.BeforeConnect(ctx, c); err != nil {
			return nil, err
		}
		return pgx.ConnectConfig(ctx, c)
	})
}

// retry runs op; when its connect is refused with 28P01 it invalidates the secret and
// runs op once more. A refusal that survives the fresh read is returned as such.
func retry[T any](h *Hook, op func() (T, error)) (T, error) {
	v, err := op()
	if !refused(err) {
		return v, err
	}
	h.cache.Invalidate(h.id)
	if h.opts.OnRetry != nil {
		h.opts.OnRetry(h.id, err)
	}
	v, err = op()
	if refused(err) {
		return v, fmt.Errorf("postgres refused the password of secret %s, read fresh from the store after a first refusal: %w", h.id, err)
	}
	return v, err
}

// refused reports whether err is a connect refused with invalid_password, and clears
// the password from the connect error's configuration (a private copy pgx made for the
// attempt) so that no caller can print it.
func refused(err error) bool {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return false
	}
	if ce.Config != nil {
		ce.Config.Password = ""
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeInvalidPassword
}

// Pool is a pgxpool.Pool whose connections log in with the secret's current value and
// whose operations retry once when their new connection is refused with 28P01. Acquire,
// AcquireFunc, Exec, Query, QueryRow, SendBatch, Begin, BeginTx, CopyFrom and Ping
// retry; other methods are the embedded pool's.
type Pool struct {
	*pgxpool.Pool
	hook *Hook
}

// NewPool creates a pool from cfg with hook supplying every new connection's login.
// cfg's own BeforeConnect, if any, runs after the hook's. cfg is not modified. Set
// cfg.MaxConnLifetime shorter than the rotation's grace period (see the package doc).
func NewPool(ctx context.Context, cfg *pgxpool.Config, hook *Hook) (*Pool, error) {
	cfg = cfg.Copy()
	next := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := hook.BeforeConnect(ctx, cc); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Pool{Pool: p, hook: hook}, nil
}

// Acquire is pgxpool.Pool.Acquire, retried once on a refused password.
func (p *Pool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	return retry(p.hook, func() (*pgxpool.Conn, error) { return p.Pool.Acquire(ctx) })
}

// AcquireFunc is pgxpool.Pool.AcquireFunc, with Acquire's retry.
func (p *Pool) AcquireFunc(ctx context.Context, f func(*pgxpool.Conn) error) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return f(c)
}

// Exec is pgxpool.Pool.Exec, retried once on a refused password.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return retry(p.hook, func() (pgconn.CommandTag, error) { return p.Pool.Exec(ctx, sql, args...) })
}

// Query is pgxpool.Pool.Query, retried once on a refused password.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return retry(p.hook, func() (pgx.Rows, error) { return p.Pool.Query(ctx, sql, args...) })
}

// QueryRow is pgxpool.Pool.QueryRow; Scan retries the query once when its connect was
// refused (the query never reached the server then).
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &row{p: p, ctx: ctx, sql: sql, args: args, first: p.Pool.QueryRow(ctx, sql, args...)}
}

// row defers QueryRow's retry to Scan, where pgx reports the error.
type row struct {
	p     *Pool
	ctx   context.Context
	sql   string
	args  []any
	first pgx.Row
}

// Scan implements pgx.Row.
func (r *row) Scan(dest ...any) error {
	used := false
	_, err := retry(r.p.hook, func() (struct{}, error) {
		if !used {
			used = true
			return struct{}{}, r.first.Scan(dest...)
		}
		return struct{}{}, r.p.Pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	})
	return err
}

// SendBatch is pgxpool.Pool.SendBatch with Acquire's retry. Close the results to
// release the connection, as with pgxpool.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	c, err := p.Acquire(ctx)
	if err != nil {
		return failedBatch{err: err}
	}
	return &releasingBatch{BatchResults: c.SendBatch(ctx, b), conn: c}
}

// releasingBatch releases its connection when closed.
type releasingBatch struct {
	pgx.BatchResults
	conn *pgxpool.Conn
}

// Close implements pgx.BatchResults.
func (b *releasingBatch) Close() error {
	defer b.conn.Release()
	return b.BatchResults.Close()
}

// failedBatch reports a batch that never got a connection.
type failedBatch struct{ err error }

func (b failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b failedBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b failedBatch) QueryRow() pgx.Row                { return failedRow(b) }
func (b failedBatch) Close() error                     { return b.err }

// failedRow is failedBatch's QueryRow.
type failedRow struct{ err error }

func (r failedRow) Scan(...any) error { return r.err }

// Begin is pgxpool.Pool.Begin, retried once on a refused password.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return retry(p.hook, func() (pgx.Tx, error) { return p.Pool.Begin(ctx) })
}

// BeginTx is pgxpool.Pool.BeginTx, retried once on a refused password.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return retry(p.hook, func() (pgx.Tx, error) { return p.Pool.BeginTx(ctx, opts) })
}

// CopyFrom is pgxpool.Pool.CopyFrom with Acquire's retry. The copy itself is not
// repeated: rowSrc may not be rewindable.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rowSrc pgx.CopyFromSource) (int64, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return c.CopyFrom(ctx, table, columns, rowSrc)
}

// Ping is pgxpool.Pool.Ping, retried once on a refused password.
func (p *Pool) Ping(ctx context.Context) error {
	_, err := retry(p.hook, func() (struct{}, error) { return struct{}{}, p.Pool.Ping(ctx) })
	return err
}
