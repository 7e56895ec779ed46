// Package spanerr marks a span as failed by the class of its error, never its message:
// the spans around calls to targets and stores share it, since a server's message can
// quote what it was sent (a statement, a value).
package spanerr

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Class names err without its message: a PostgreSQL SQLSTATE ("28P01"), an AWS error
// code ("ResourceNotFoundException"), "timeout" or "canceled" for a context that ended,
// else the error's Go type.
func Class(err error) string {
	var sqlState interface{ SQLState() string }
	var coded interface{ ErrorCode() string }
	switch {
	case errors.As(err, &sqlState):
		return sqlState.SQLState()
	case errors.As(err, &coded) && coded.ErrorCode() != "":
		return coded.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorType(err).Value.AsString()
}

// Set records a failed call on span: error.type and an error status, both Class(err).
func Set(span trace.Span, err error) {
	class := Class(err)
	span.SetAttributes(semconv.ErrorTypeKey.String(class))
	span.SetStatus(codes.Error, class)
}
