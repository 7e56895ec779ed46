// Package pgxspans traces what Keyturn sends to PostgreSQL through pgx: a client span for
// each connection attempt and each statement, with the database semantic-convention
// attributes (db.system.name, db.namespace, db.operation.name, server.address,
// server.port, db.response.status_code, error.type), on an explicitly given tracer
// provider.
//
// The statement's text and its arguments are never recorded, and neither is a server's
// error message: Keyturn's ALTER ROLE ... PASSWORD carries the new password's verifier as
// a literal (the command takes no bind parameters), and a syntax error quotes the text
// near it. A span names the statement by its leading keywords only, from a fixed list,
// and a failure by its SQLSTATE or error class. This is why the tracer is Keyturn's own
// rather than a general-purpose one, which records the statement by default.
package pgxspans

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/telemetry/internal/spanerr"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/keyturn/keyturn/telemetry/pgxspans"

// ConnectSpanName names the span of a connection attempt (login included).
const ConnectSpanName = "connect"

// Tracer is a pgx.QueryTracer and pgx.ConnectTracer for the connections to one server
// and database; set it as pgx.ConnConfig.Tracer.
type Tracer struct {
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

var (
	_ pgx.QueryTracer   = (*Tracer)(nil)
	_ pgx.ConnectTracer = (*Tracer)(nil)
)

// New returns a tracer for connections to host:port, database, making its spans on tp.
// With a nil tp it returns nil, which pgx takes as no tracer.
func New(tp trace.TracerProvider, host string, port int, database string) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{
		tracer: tp.Tracer(ScopeName),
		attrs: []attribute.KeyValue{
			semconv.DBSystemNamePostgreSQL,
			semconv.DBNamespace(database),
			semconv.ServerAddress(host),
			semconv.ServerPort(port),
		},
	}
}

type spanKey struct{}

// TraceConnectStart starts the span of a connection attempt.
func (t *Tracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return t.start(ctx, ConnectSpanName, t.attrs)
}

// TraceConnectEnd ends it, with the failure's class if the attempt failed.
func (t *Tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	end(ctx, data.Err)
}

// TraceQueryStart starts the span of a statement, named by its leading keywords.
func (t *Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	op := Operation(data.SQL)
	if op == "" {
		return t.start(ctx, "postgresql", t.attrs)
	}
	return t.start(ctx, op, append(t.attrs[:len(t.attrs):len(t.attrs)], semconv.DBOperationName(op)))
}

// TraceQueryEnd ends it, with the failure's SQLSTATE if the statement failed.
func (t *Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	end(ctx, data.Err)
}

func (t *Tracer) start(ctx context.Context, name string, attrs []attribute.KeyValue) context.Context {
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, spanKey{}, span)
}

// end ends the span start put in ctx. A failure is told by its SQLSTATE or class only
// (see the package documentation): never its message.
func end(ctx context.Context, err error) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	defer span.End()
	if err == nil {
		return
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		span.SetAttributes(semconv.DBResponseStatusCode(pgErr.Code))
	}
	spanerr.Set(span, err)
}

// commands are the statements' first keywords that a span may name; objects are the
// object types that may follow ALTER, CREATE and DROP. Nothing else of the text is used.
var (
	commands = map[string]bool{
		"SELECT": true, "INSERT": true, "UPDATE": true, "DELETE": true, "MERGE": true, "WITH": true,
		"VALUES": true, "TABLE": true, "BEGIN": true, "START": true, "COMMIT": true, "END": true,
		"ROLLBACK": true, "ABORT": true, "SAVEPOINT": true, "RELEASE": true, "SET": true, "RESET": true,
		"SHOW": true, "GRANT": true, "REVOKE": true, "ALTER": true, "CREATE": true, "DROP": true,
		"TRUNCATE": true, "LOCK": true, "DO": true, "CALL": true, "COPY": true, "EXPLAIN": true,
		"ANALYZE": true, "VACUUM": true, "DISCARD": true, "LISTEN": true, "NOTIFY": true,
	}
	objects = map[string]bool{
		"ROLE": true, "USER": true, "GROUP": true, "TABLE": true, "INDEX": true, "VIEW": true,
		"SCHEMA": true, "DATABASE": true, "SEQUENCE": true, "FUNCTION": true, "PROCEDURE": true,
		"EXTENSION": true, "TYPE": true, "MATERIALIZED": true, "DEFAULT": true, "SYSTEM": true,
	}
)

// Operation returns the statement's command in upper case, "SELECT" or "ALTER ROLE", or
// "" when its first word is not a known command (then no operation is recorded).
func Operation(sql string) string {
	words := strings.Fields(sql)
	if len(words) == 0 {
		return ""
	}
	first := keyword(words[0])
	if !commands[first] {
		return ""
	}
	switch first {
	case "ALTER", "CREATE", "DROP":
		if len(words) > 1 {
			if second := keyword(words[1]); objects[second] {
				return first + " " + second
			}
		}
	}
	return first
}

// keyword is a word's leading ASCII letters in upper case: "begin;" is BEGIN.
func keyword(word string) string {
	end := 0
	for end < len(word) && (word[end] >= 'a' && word[end] <= 'z' || word[end] >= 'A' && word[end] <= 'Z') {
		end++
	}
	return strings.ToUpper(word[:end])
}
