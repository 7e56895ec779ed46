package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/stores"
)

// Error types are the contract between activities and the workflow's retry policies: the
// workflow lists the non-retryable ones by these strings, and operators see them in the
// Web UI's failure details.
const (
	// ErrTypeInvalidConfig: the inventory entry cannot work; fix the inventory.
	ErrTypeInvalidConfig = "KeyturnInvalidConfig"
	// ErrTypePermissionDenied: the admin credential lacks a privilege; grant it.
	ErrTypePermissionDenied = "KeyturnPermissionDenied"
	// ErrTypeUnknownSecret: the secret ID is not in the worker's inventory.
	ErrTypeUnknownSecret = "KeyturnUnknownSecret"
	// ErrTypeCredentialRejected: the target refused the credential under test.
	ErrTypeCredentialRejected = "KeyturnCredentialRejected"
	// ErrTypeCheckFailed: the credential logs in but fails the inventory's check query.
	ErrTypeCheckFailed = "KeyturnCheckFailed"
	// ErrTypeNotFound: the store has no such version.
	ErrTypeNotFound = "KeyturnNotFound"
	// ErrTypeRestoreFailed: rollback could not make the kept credential work. Needs a human.
	ErrTypeRestoreFailed = "KeyturnRestoreFailed"
)

// NonRetryable lists the error types no retry can fix.
var NonRetryable = []string{ErrTypeInvalidConfig, ErrTypePermissionDenied, ErrTypeUnknownSecret, ErrTypeCheckFailed}

// ErrUnknownSecret is returned by a Resolver for a secret ID it does not know.
var ErrUnknownSecret = errors.New("unknown secret")

// classify turns a step's error into an ApplicationError whose type the workflow's retry
// policies understand. Messages come from the rotators and stores, which never put
// material in errors; the cause chain is dropped so nothing else can ride along.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	kind := "KeyturnStepFailed"
	nonRetryable := false
	switch {
	case errors.Is(err, ErrUnknownSecret):
		kind, nonRetryable = ErrTypeUnknownSecret, true
	case errors.Is(err, rotators.ErrInvalidConfig):
		kind, nonRetryable = ErrTypeInvalidConfig, true
	case errors.Is(err, rotators.ErrPermissionDenied), errors.Is(err, stores.ErrPermissionDenied):
		kind, nonRetryable = ErrTypePermissionDenied, true
	case errors.Is(err, rotators.ErrCheckFailed):
		kind, nonRetryable = ErrTypeCheckFailed, true
	case errors.Is(err, rotators.ErrCredentialRejected):
		kind = ErrTypeCredentialRejected
	case errors.Is(err, rotation.ErrRestoreFailed):
		kind = ErrTypeRestoreFailed
	case errors.Is(err, stores.ErrNotFound):
		kind = ErrTypeNotFound
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), kind, temporal.ApplicationErrorOptions{NonRetryable: nonRetryable})
}

// DetailsOf returns the value of type T that a failed or cancelled workflow, child or
// activity attached to its error (a RotateResult, an IncidentReport, the version a
// rollback was undoing), and whether there was one. It is the one place that knows
// where Temporal keeps such details.
func DetailsOf[T any](err error) (T, bool) {
	var v T
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&v) == nil {
		return v, true
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) && canceled.HasDetails() && canceled.Details(&v) == nil {
		return v, true
	}
	return v, false
}
