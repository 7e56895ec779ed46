package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/rotators"
)

func TestSanitize(t *testing.T) {
	const password = "correct-horse-battery-staple"
	v, err := newVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	secrets := append(v.secrets(), password)
	leaky := &pgconn.PgError{
		Severity: "ERROR", Code: "42501",
		Message: "permission denied near " + v.text,
		Detail:  "password " + password,
		Where:   "stored key " + v.storedKey,
		Hint:    "server key " + v.serverKey,
	}

	check := func(t *testing.T, err error) {
		t.Helper()
		text := fmt.Sprintf("%v %+v %#v", err, err, err)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("sanitized error lost its *pgconn.PgError: %v", err)
		}
		text += fmt.Sprintf("%#v", *pgErr)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("sanitized error still holds a secret: %s", text)
			}
		}
		if pgErr.Code != "42501" {
			t.Errorf("SQLSTATE = %q, want 42501", pgErr.Code)
		}
		if leaky.Detail != "password "+password {
			t.Error("sanitize changed the original error")
		}
	}

	t.Run("bare", func(t *testing.T) {
		got := sanitize(leaky, secrets...)
		if _, ok := got.(*pgconn.PgError); !ok {
			t.Errorf("a bare *pgconn.PgError came back as %T", got)
		}
		check(t, got)
	})
	t.Run("wrapped", func(t *testing.T) {
		wrapped := fmt.Errorf("alter role: %w (%s)", leaky, password)
		wrapped = fmt.Errorf("%w: %w", context.DeadlineExceeded, wrapped)
		got := sanitize(wrapped, secrets...)
		check(t, got)
		if !errors.Is(got, context.DeadlineExceeded) {
			t.Error("sanitized error lost context.DeadlineExceeded")
		}
	})
	t.Run("fail maps 42501", func(t *testing.T) {
		got := fail("alter role", leaky, secrets...)
		check(t, got)
		if !errors.Is(got, rotators.ErrPermissionDenied) {
			t.Errorf("fail = %v, want ErrPermissionDenied", got)
		}
	})
	t.Run("clean errors pass through", func(t *testing.T) {
		clean := &pgconn.PgError{Severity: "ERROR", Code: "XX000", Message: "nothing secret"}
		if got := sanitize(clean, secrets...); got != error(clean) {
			t.Errorf("a clean error was rebuilt: %v", got)
		}
	})
}
