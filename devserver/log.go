package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts the server's tag-based logger interface to slog and
// drops records below a minimum level before their tags are converted, which
// is where the cost of the server's chatty Debug and Info logging lies.
type serverLogger struct {
	out *slog.Logger
	min slog.Leveler
}

var (
	_ log.Logger      = (*serverLogger)(nil)
	_ log.WithLogger  = (*serverLogger)(nil)
	_ log.SLogWrapper = (*serverLogger)(nil)
)

// newServerLogger returns a server logger writing to out at min and above.
func newServerLogger(out *slog.Logger, min slog.Leveler) *serverLogger {
	return &serverLogger{out: out, min: min}
}

// fatalError is the panic value of serverLogger.Fatal. The server calls Fatal
// when, for example, it cannot bind a port; exiting the whole process from a
// library would take `keyturn dev` or a test binary down with it, so Start
// recovers this value and returns it as an error instead.
type fatalError struct {
	msg string
}

func (e fatalError) Error() string { return e.msg }

func (l *serverLogger) Debug(msg string, tags ...tag.Tag) { l.emit(slog.LevelDebug, msg, tags) }
func (l *serverLogger) Info(msg string, tags ...tag.Tag)  { l.emit(slog.LevelInfo, msg, tags) }
func (l *serverLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(slog.LevelWarn, msg, tags) }
func (l *serverLogger) Error(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }

// DPanic panics only in the server's development builds; here it is an error.
func (l *serverLogger) DPanic(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }

func (l *serverLogger) Panic(msg string, tags ...tag.Tag) {
	l.emit(slog.LevelError, msg, tags)
	panic(msg)
}

func (l *serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.emit(slog.LevelError, msg, tags)
	panic(fatalError{msg: describe(msg, tags)})
}

// With returns a logger that adds tags to every record.
func (l *serverLogger) With(tags ...tag.Tag) log.Logger {
	return &serverLogger{out: l.out.With(attrs(tags)...), min: l.min}
}

// SLog lets server code that logs through slog reach the same output, with
// the same minimum level.
func (l *serverLogger) SLog() *slog.Logger {
	return slog.New(&minLevelHandler{next: l.out.Handler(), min: l.min})
}

func (l *serverLogger) enabled(level slog.Level) bool {
	return level >= l.min.Level() && l.out.Enabled(context.Background(), level)
}

func (l *serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	if !l.enabled(level) {
		return
	}
	l.out.Log(context.Background(), level, msg, attrs(tags)...)
}

// attrs converts server tags to slog key-value arguments.
func attrs(tags []tag.Tag) []any {
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		out = append(out, slog.Any(t.Key(), t.Value()))
	}
	return out
}

// describe puts the service and error tags, if any, into a fatal message,
// because that is what the caller of Start needs to see.
func describe(msg string, tags []tag.Tag) string {
	var service, cause any
	for _, t := range tags {
		switch t.Key() {
		case "service":
			service = t.Value()
		case "error":
			cause = t.Value()
		}
	}
	if service != nil {
		msg = fmt.Sprintf("%v service: %s", service, msg)
	}
	if cause != nil {
		msg = fmt.Sprintf("%s: %v", msg, cause)
	}
	return msg
}

// minLevelHandler drops records below min before passing them on.
type minLevelHandler struct {
	next slog.Handler
	min  slog.Leveler
}

func (h *minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min.Level() && h.next.Enabled(ctx, level)
}

func (h *minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h *minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &minLevelHandler{next: h.next.WithAttrs(as), min: h.min}
}

func (h *minLevelHandler) WithGroup(name string) slog.Handler {
	return &minLevelHandler{next: h.next.WithGroup(name), min: h.min}
}

// stoppableLevel is the server logger's minimum level. While the server shuts
// down, its services log every poll, dial and query that fails because
// another service is already gone, as warnings and errors; none of it is
// actionable, so quiet turns server logging off for that phase. A Fatal or
// Panic still panics with its message.
type stoppableLevel struct {
	base     slog.Leveler
	stopping atomic.Bool
}

// silent is above every level the server logs at.
const silent = slog.LevelError + 100

// Level implements slog.Leveler.
func (l *stoppableLevel) Level() slog.Level {
	if l.stopping.Load() {
		return silent
	}
	return l.base.Level()
}

// quiet silences the server logger for the rest of the server's life.
func (l *stoppableLevel) quiet() { l.stopping.Store(true) }

// quietLogger returns out filtered to level and above, for the SDK client the
// dev server uses to set itself up.
func quietLogger(out *slog.Logger, level slog.Leveler) *slog.Logger {
	return slog.New(&minLevelHandler{next: out.Handler(), min: level})
}
