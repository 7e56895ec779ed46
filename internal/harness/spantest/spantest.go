// Package spantest records spans in memory for the tests of instrumented clients, and
// writes out everything a span carries for leak scans. Tests only.
package spantest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Recorder is a tracer provider whose spans are kept in memory as they end.
type Recorder struct {
	Provider *sdktrace.TracerProvider
	exporter *tracetest.InMemoryExporter
}

// New returns a recorder that is shut down when the test ends.
func New(t testing.TB) *Recorder {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{Provider: tp, exporter: exp}
}

// Parent starts a span standing for the caller (an activity, say) and returns ctx with
// it, and its span context, for checking that the client's spans are its children.
func (r *Recorder) Parent(ctx context.Context) (context.Context, trace.SpanContext) {
	ctx, span := r.Provider.Tracer("spantest").Start(ctx, "parent")
	return ctx, span.SpanContext()
}

// Spans are the spans ended so far.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.exporter.GetSpans() }

// Scope returns the ended spans of one instrumentation scope.
func (r *Recorder) Scope(name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.Spans() {
		if s.InstrumentationScope.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Reset forgets the spans recorded so far.
func (r *Recorder) Reset() { r.exporter.Reset() }

// Attrs returns a span's attributes by key, as their text.
func Attrs(s tracetest.SpanStub) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// Dump writes out everything a span carries that a person or a backend could read: its
// name, attributes, events with theirs, status, links and resource.
func Dump(spans tracetest.SpanStubs) string {
	var b strings.Builder
	attrs := func(kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.Emit())
		}
	}
	for _, s := range spans {
		fmt.Fprintf(&b, "span %s status=%s %q", s.Name, s.Status.Code, s.Status.Description)
		attrs(s.Attributes)
		for _, e := range s.Events {
			fmt.Fprintf(&b, "\n  event %s", e.Name)
			attrs(e.Attributes)
		}
		for _, l := range s.Links {
			b.WriteString("\n  link")
			attrs(l.Attributes)
		}
		if s.Resource != nil {
			b.WriteString("\n  resource")
			attrs(s.Resource.Attributes())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// WantChildren fails the test unless there are spans and each is a child of parent, in
// its trace.
func WantChildren(t testing.TB, spans tracetest.SpanStubs, parent trace.SpanContext) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no span was recorded")
	}
	for _, s := range spans {
		if s.Parent.SpanID() != parent.SpanID() || s.SpanContext.TraceID() != parent.TraceID() {
			t.Errorf("span %s is not a child of the caller's span", s.Name)
		}
	}
}

// WantNoneOf fails the test if any of the values appears anywhere in the spans (Dump).
func WantNoneOf(t testing.TB, spans tracetest.SpanStubs, values ...string) {
	t.Helper()
	text := Dump(spans)
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("a span carries material (%d bytes of it)", len(v))
		}
	}
}
