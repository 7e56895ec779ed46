package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// SQLSTATE codes the rotator gives a meaning to.
const (
	sqlstateInsufficientPrivilege = "42501"
	sqlstateInvalidPassword       = "28P01"
	sqlstateInvalidAuthorization  = "28000"
	sqlstateInvalidCatalogName    = "3D000" // the database does not exist
)

// minSecretLen: only the empty string is never redacted. A short operator-chosen admin
// password is still a password; a mangled error message is the lesser harm.
const minSecretLen = 1

// sanitize returns err without any of the secrets in its message or, for a server error,
// in any of its fields. An error that holds none comes back unchanged. One that does is
// rebuilt: a *pgconn.PgError as a cleaned copy, so errors.As and its SQLSTATE still work;
// anything else as a redacted message that still unwraps to the cleaned server error and
// to the context error, if there were any. The rest of the original chain is dropped,
// because any link of it may repeat the secret.
func sanitize(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	secrets = usable(secrets)
	if len(secrets) == 0 {
		return err
	}
	var pgErr *pgconn.PgError
	hasPgErr := errors.As(err, &pgErr)
	if !containsAny(err.Error(), secrets) && (!hasPgErr || !pgErrContains(pgErr, secrets)) {
		return err
	}
	var clean *pgconn.PgError
	if hasPgErr {
		clean = cleanPgError(pgErr, secrets)
		if err == error(pgErr) {
			return clean
		}
	}
	causes := secret.Kept(err)
	if clean != nil {
		causes = append([]error{clean}, causes...)
	}
	return secret.Scrubbed(secret.RedactAll(err.Error(), secrets...), causes...)
}

func usable(secrets []string) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			out = append(out, s)
		}
	}
	return out
}

func containsAny(s string, secrets []string) bool {
	for _, secret := range secrets {
		if strings.Contains(s, secret) {
			return true
		}
	}
	return false
}

// pgErrTextFields lists the free-text fields of a server error.
func pgErrTextFields(e *pgconn.PgError) []*string {
	return []*string{
		&e.Message, &e.Detail, &e.Hint, &e.InternalQuery, &e.Where,
		&e.SchemaName, &e.TableName, &e.ColumnName, &e.DataTypeName, &e.ConstraintName,
	}
}

func pgErrContains(e *pgconn.PgError, secrets []string) bool {
	for _, f := range pgErrTextFields(e) {
		if containsAny(*f, secrets) {
			return true
		}
	}
	return false
}

func cleanPgError(e *pgconn.PgError, secrets []string) *pgconn.PgError {
	c := *e
	for _, f := range pgErrTextFields(&c) {
		*f = secret.RedactAll(*f, secrets...)
	}
	return &c
}

// fail wraps a failed operation: secrets removed, and the sentinel its SQLSTATE means
// attached so the workflow can tell final errors from retryable ones.
func fail(op string, err error, secrets ...string) error {
	err = sanitize(err, secrets...)
	switch sqlstate(err) {
	case sqlstateInsufficientPrivilege:
		return fmt.Errorf("%s: %w: %w", op, rotators.ErrPermissionDenied, err)
	case sqlstateInvalidCatalogName:
		return fmt.Errorf("%s: %w: %w", op, rotators.ErrInvalidConfig, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// loginRefused reports whether the server refused a login (a wrong password, a NOLOGIN
// role, a role that does not exist, or a pg_hba.conf reject).
func loginRefused(err error) bool {
	code := sqlstate(err)
	return code == sqlstateInvalidPassword || code == sqlstateInvalidAuthorization
}

func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("postgres: %w: %s", rotators.ErrInvalidConfig, fmt.Sprintf(format, args...))
}
