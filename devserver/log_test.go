package devserver

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

func TestServerLoggerFiltersAndAdaptsTags(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	out := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	level := &stoppableLevel{base: slog.LevelWarn}
	logger := newServerLogger(out, level)

	logger.Info("chatty", tag.NewStringTag("k", "v"))
	logger.With(tag.NewStringTag("service", "frontend")).Warn("kept", tag.Error(errors.New("boom")))
	logger.SLog().Info("chatty through slog")
	logger.SLog().Error("kept through slog")
	level.quiet()
	logger.Error("dropped while stopping")

	got := buf.String()
	for _, want := range []string{`msg=kept service=frontend error=boom`, `msg="kept through slog"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"chatty", "dropped"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("log output has %q:\n%s", unwanted, got)
		}
	}
}

func TestServerLoggerFatalPanicsWithCause(t *testing.T) {
	t.Parallel()
	logger := newServerLogger(slog.New(slog.DiscardHandler), slog.LevelWarn)
	defer func() {
		fatal, ok := recover().(fatalError)
		if !ok {
			t.Fatal("Fatal did not panic with a fatalError")
		}
		if want := "matching service: Failed to start gRPC listener: in use"; fatal.Error() != want {
			t.Errorf("fatal error = %q, want %q", fatal.Error(), want)
		}
	}()
	logger.Fatal("Failed to start gRPC listener", tag.NewStringTag("service", "matching"), tag.Error(errors.New("in use")))
}
