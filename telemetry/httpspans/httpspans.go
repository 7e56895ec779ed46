// Package httpspans traces the HTTP requests Keyturn makes to targets and stores (an
// HTTP API, Vault) and to webhooks: one client span per request, made by otelhttp with
// the HTTP semantic-convention attributes (http.request.method, server.address,
// server.port, http.response.status_code, error.type), on an explicitly given tracer
// provider.
//
// What a span says about the URL is decided here, once: url.full never holds a query
// string or user info, and with HostOnly it is left out altogether, for URLs that are
// themselves credentials (a Slack webhook's path is its secret). Request and response
// headers and bodies are never recorded; no trace context is sent to the server, since
// Keyturn sets no global propagator.
package httpspans

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// URLPolicy says how much of a request's URL its span records.
type URLPolicy int

const (
	// SchemeHostPath records url.full as scheme://host/path: the query string, which
	// may carry a token, and any user info are dropped. For Vault and HTTP APIs, whose
	// paths name things, not secrets.
	SchemeHostPath URLPolicy = iota
	// HostOnly records no url.full at all, only server.address and server.port: for a
	// URL that is itself a credential, such as a webhook's.
	HostOnly
)

// Transport wraps base (http.DefaultTransport when nil) so that each request is a
// client span on tp, its URL recorded as policy allows. With a nil tp it returns base
// as it is: nothing is traced.
func Transport(base http.RoundTripper, tp trace.TracerProvider, policy URLPolicy) http.RoundTripper {
	if tp == nil {
		return base
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(urlTracerProvider{TracerProvider: tp, policy: policy}),
		// Keyturn's HTTP metrics are its own; otelhttp's are not exported.
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		// The semantic conventions name a client span by its method alone when there is
		// no URL template.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// RedactURL is what a span records in url.full under policy: "" for HostOnly.
func RedactURL(u *url.URL, policy URLPolicy) string {
	if policy == HostOnly || u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// ScrubURL replaces every part of u that could be a credential (the whole URL, its
// path, its query) in msg with [URL]: for error texts that quote the request, as
// *url.Error does.
func ScrubURL(msg string, u *url.URL) string {
	if u == nil {
		return msg
	}
	for _, part := range []string{u.String(), u.RawQuery, u.EscapedPath(), u.Path} {
		if len(part) > 1 {
			msg = strings.ReplaceAll(msg, part, "[URL]")
		}
	}
	return msg
}

// urlTracerProvider hands out tracers whose spans rewrite url.full by policy. otelhttp
// sets url.full from the request as it is; this is the one place that can keep it out.
type urlTracerProvider struct {
	trace.TracerProvider
	policy URLPolicy
}

func (p urlTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return urlTracer{Tracer: p.TracerProvider.Tracer(name, opts...), policy: p.policy}
}

type urlTracer struct {
	trace.Tracer
	policy URLPolicy
}

func (t urlTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := t.Tracer.Start(ctx, name, opts...)
	return ctx, &urlSpan{Span: span, policy: t.policy}
}

// urlSpan redacts url.full as it is set and remembers the URL, so that a status or an
// error that quotes it (a transport error rarely does) is scrubbed too.
type urlSpan struct {
	trace.Span
	policy URLPolicy
	url    *url.URL
}

func (s *urlSpan) SetAttributes(kvs ...attribute.KeyValue) {
	out := kvs[:0:0]
	for _, kv := range kvs {
		if kv.Key != semconv.URLFullKey {
			out = append(out, kv)
			continue
		}
		u, err := url.Parse(kv.Value.AsString())
		if err != nil {
			continue // what cannot be parsed cannot be redacted: leave it out
		}
		s.url = u
		if v := RedactURL(u, s.policy); v != "" {
			out = append(out, semconv.URLFull(v))
		}
	}
	s.Span.SetAttributes(out...)
}

func (s *urlSpan) SetStatus(code codes.Code, description string) {
	s.Span.SetStatus(code, ScrubURL(description, s.url))
}

func (s *urlSpan) RecordError(err error, opts ...trace.EventOption) {
	if err != nil {
		err = errors.New(ScrubURL(err.Error(), s.url))
	}
	s.Span.RecordError(err, opts...)
}
