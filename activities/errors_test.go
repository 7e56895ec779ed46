package activities

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/stores"
)

func TestClassify(t *testing.T) {
	for name, tc := range map[string]struct {
		err          error
		wantType     string
		nonRetryable bool
	}{
		"unknown secret":      {fmt.Errorf("x: %w", ErrUnknownSecret), ErrTypeUnknownSecret, true},
		"invalid config":      {fmt.Errorf("x: %w", rotators.ErrInvalidConfig), ErrTypeInvalidConfig, true},
		"permission denied":   {fmt.Errorf("x: %w", rotators.ErrPermissionDenied), ErrTypePermissionDenied, true},
		"store denied":        {fmt.Errorf("x: %w", stores.ErrPermissionDenied), ErrTypePermissionDenied, true},
		"check failed":        {fmt.Errorf("x: %w", rotators.ErrCheckFailed), ErrTypeCheckFailed, true},
		"credential rejected": {fmt.Errorf("x: %w", rotators.ErrCredentialRejected), ErrTypeCredentialRejected, false},
		"restore failed":      {fmt.Errorf("x: %w", rotation.ErrRestoreFailed), ErrTypeRestoreFailed, false},
		"store not found":     {fmt.Errorf("x: %w", stores.ErrNotFound), ErrTypeNotFound, false},
		"anything else":       {errors.New("connection refused"), "KeyturnStepFailed", false},
	} {
		t.Run(name, func(t *testing.T) {
			var appErr *temporal.ApplicationError
			if !errors.As(classify(tc.err), &appErr) {
				t.Fatal("not an ApplicationError")
			}
			if appErr.Type() != tc.wantType || appErr.NonRetryable() != tc.nonRetryable {
				t.Fatalf("type %s nonRetryable %v, want %s %v", appErr.Type(), appErr.NonRetryable(), tc.wantType, tc.nonRetryable)
			}
			if appErr.Message() != tc.err.Error() {
				t.Fatalf("message %q, want %q", appErr.Message(), tc.err.Error())
			}
			if got := slices.Contains(NonRetryable, tc.wantType); got != tc.nonRetryable {
				t.Fatalf("NonRetryable list and classify disagree on %s", tc.wantType)
			}
		})
	}
}
