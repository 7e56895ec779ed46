// Package redisspans traces what Keyturn sends to Redis through go-redis: a client span
// for each connection (login included) and each command, with the database
// semantic-convention attributes (db.system.name, db.operation.name, server.address,
// server.port, db.response.status_code, error.type), on an explicitly given tracer
// provider.
//
// A command's arguments are never recorded, nor a server's error message: ACL SETUSER
// carries a password's hash and AUTH the password itself. A span names the command
// ("ACL SETUSER", "CLIENT KILL") from a fixed list of container commands, and a failure
// by the first word of Redis's answer (WRONGPASS, NOPERM) or its class. This is why the
// hook is Keyturn's own rather than go-redis's, which records the command by default.
package redisspans

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/telemetry/internal/spanerr"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/keyturn/keyturn/telemetry/redisspans"

// ConnectSpanName names the span of a connection attempt.
const ConnectSpanName = "connect"

// Hook is a redis.Hook making the spans of one client, for one node.
type Hook struct {
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

var _ redis.Hook = (*Hook)(nil)

// New returns a hook for a client of node (host:port), making its spans on tp, or nil
// for a nil tp (add nothing then).
func New(tp trace.TracerProvider, node string) *Hook {
	if tp == nil {
		return nil
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameRedis}
	if host, port, err := net.SplitHostPort(node); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	return &Hook{tracer: tp.Tracer(ScopeName), attrs: attrs}
}

// DialHook makes the span of a connection attempt.
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, span := h.start(ctx, ConnectSpanName, "")
		conn, err := next(ctx, network, addr)
		end(span, err)
		return conn, err
	}
}

// ProcessHook makes the span of a command.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		op := Operation(cmd.Args())
		ctx, span := h.start(ctx, op, op)
		err := next(ctx, cmd)
		if errors.Is(err, redis.Nil) {
			err = nil // a missing key is an answer, not a failure
		}
		end(span, err)
		return err
	}
}

// ProcessPipelineHook makes one span for a pipeline (a connection's login is one).
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := h.start(ctx, "pipeline", "")
		err := next(ctx, cmds)
		end(span, err)
		return err
	}
}

func (h *Hook) start(ctx context.Context, name, op string) (context.Context, trace.Span) {
	attrs := h.attrs
	if op != "" && op != "redis" {
		attrs = append(attrs[:len(attrs):len(attrs)], semconv.DBOperationName(op))
	}
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// end ends span, telling a failure by the first word of Redis's answer (its error
// prefix) or its class, never its message.
func end(span trace.Span, err error) {
	defer span.End()
	if err == nil {
		return
	}
	var answer redis.Error
	if errors.As(err, &answer) {
		if code, _, _ := strings.Cut(answer.Error(), " "); isCode(code) {
			span.SetAttributes(semconv.DBResponseStatusCode(code))
		}
	}
	spanerr.Set(span, err)
}

// isCode reports whether word looks like a Redis error prefix (ERR, WRONGPASS, NOPERM):
// upper-case letters only, so no argument can pass for one.
func isCode(word string) bool {
	if word == "" || len(word) > 20 {
		return false
	}
	for _, r := range word {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// containers are the commands whose first argument is a subcommand worth naming.
var containers = map[string]bool{"ACL": true, "CLIENT": true, "COMMAND": true, "CONFIG": true, "SLOWLOG": true}

// Operation returns the command's name in upper case ("PING", "ACL SETUSER"), or "redis"
// when its first argument is not a plain name. Only the name and, for container
// commands, a subcommand made of letters are used.
func Operation(args []any) string {
	if len(args) == 0 {
		return "redis"
	}
	name, ok := args[0].(string)
	if !ok || !isWord(name) {
		return "redis"
	}
	name = strings.ToUpper(name)
	if containers[name] && len(args) > 1 {
		if sub, ok := args[1].(string); ok && isWord(sub) {
			return name + " " + strings.ToUpper(sub)
		}
	}
	return name
}

// isWord reports whether s is a command name: ASCII letters and '-' or '_', at most 32.
func isWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
