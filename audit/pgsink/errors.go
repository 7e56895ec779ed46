package pgsink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLSTATE codes the sink gives a meaning to.
const (
	sqlstateUniqueViolation      = "23505"
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
	sqlstateUndefinedTable       = "42P01"
	sqlstateInvalidSchemaName    = "3F000"
)

// parseDSN parses a connection string. Its error says only that it does not parse: the
// driver's error keeps the string (password included) in a field a caller could print.
func parseDSN(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("audit postgres: the connection string does not parse (not repeated here: it may hold a password)")
	}
	return cfg, nil
}

// fail wraps err with the operation. A connection failure is rebuilt: pgconn.ConnectError
// carries the whole connection config, password included, for anyone who unwraps it, so
// only its message (user and database, never the password), the server's error (its
// SQLSTATE, 28P01 for a wrong password) and a context error are kept.
func fail(op string, err error) error {
	var connErr *pgconn.ConnectError
	if !errors.As(err, &connErr) {
		return fmt.Errorf("audit postgres: %s: %w", op, err)
	}
	e := &connectError{msg: "audit postgres: " + op + ": " + connErr.Error()}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		e.causes = append(e.causes, pgErr)
	}
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			e.causes = append(e.causes, ctxErr)
		}
	}
	return e
}

// connectError is a connection failure without the driver's connection config.
type connectError struct {
	msg    string
	causes []error
}

func (e *connectError) Error() string   { return e.msg }
func (e *connectError) Unwrap() []error { return e.causes }

// sqlstate is the server's error code in err, "" when it holds none.
func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
