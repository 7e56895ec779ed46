package notify

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"

	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/internal/inventory"
)

// TestSpans: with a tracer provider, each webhook request is a client span under the
// caller's with its method, the receiver's host and port and the status, and no url.full:
// the webhook's URL is a credential, and neither it nor its path appears in any span, not
// for a retried 500 and not for a receiver that is gone.
func TestSpans(t *testing.T) {
	_, s, route := serve(t, inventory.NotifyFormatSlack, http.StatusInternalServerError, http.StatusOK)
	rec := spantest.New(t)
	s.TracerProvider = rec.Provider
	ctx, parent := rec.Parent(t.Context())
	if d, err := s.Send(ctx, route, failure()); err != nil || d.Attempts != 2 {
		t.Fatalf("Send = %+v, %v", d, err)
	}
	hook := s.Revealer.(refs)["env:HOOK_URL"]
	u, err := url.Parse(hook)
	if err != nil {
		t.Fatal(err)
	}
	spans := rec.Scope(otelhttp.ScopeName)
	spantest.WantChildren(t, spans, parent)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want one per attempt:\n%s", len(spans), spantest.Dump(spans))
	}
	for i, status := range []string{"500", "200"} {
		a := spantest.Attrs(spans[i])
		if spans[i].Name != "POST" || a["server.address"] != u.Hostname() || a["server.port"] != u.Port() || a["http.response.status_code"] != status {
			t.Errorf("span %d: %s %v, want POST to %s answered %s", i, spans[i].Name, a, u.Host, status)
		}
		if _, ok := a["url.full"]; ok {
			t.Errorf("span %d records url.full", i)
		}
	}
	if spans[0].Status.Code != codes.Error {
		t.Error("the 500 is not a failed span")
	}

	// A receiver that is gone: the transport error is the span's status, without the URL.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	goneHook := dead.URL + "/hooks/T000/B000/gone-secret-path"
	gone := &Sender{Revealer: refs{"env:HOOK_URL": goneHook, "env:HOOK_KEY": testKey}, MaxAttempts: 1, TracerProvider: rec.Provider}
	rec.Reset()
	if _, err := gone.Send(ctx, route, failure()); err == nil {
		t.Fatal("Send to a closed receiver succeeded")
	}
	failed := rec.Scope(otelhttp.ScopeName)
	if len(failed) != 1 || failed[0].Status.Code != codes.Error || failed[0].Status.Description == "" {
		t.Errorf("want one failed span:\n%s", spantest.Dump(failed))
	}
	spantest.WantNoneOf(t, append(spans, failed...), hook, u.Path, "secretpath", goneHook, "gone-secret-path", testKey)
}
