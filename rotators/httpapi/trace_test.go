package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"

	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
)

// TestSpans: with a tracer provider, each request of a rotation against a real HTTP
// server is a client span under the caller's, with its method, host, port, status and
// the URL without its query string (which here carries a token); no span holds the admin
// token, the new key's secret or the query. A 503 and an unreachable server show as
// failed spans, still without the query.
func TestSpans(t *testing.T) {
	s := apitest.Start(t)
	rec := spantest.New(t)
	cfg := exampleConfig(s)
	const query = "tenant=acme&token=query-token-5f2d"
	cfg.Test.URL += "?" + query
	cfg.TracerProvider = rec.Provider
	r := mustNew(t, cfg)
	ctx, parent := rec.Parent(t.Context())
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}

	g, err := r.Mint(ctx, rotators.MintRequest{SecretID: "prod/payments/api", Token: "rotate/prod/payments/api/run-1", Minted: func(map[string]string) {}})
	if err != nil {
		t.Fatal(err)
	}
	v := secret.Version{SecretID: "prod/payments/api", Token: "rotate/prod/payments/api/run-1", Number: 1, Metadata: g.Metadata}
	if err := r.Test(ctx, rotators.TestRequest{Version: v, Material: g.Material}); err != nil {
		t.Fatal(err)
	}
	if err := r.Revoke(ctx, rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatal(err)
	}
	spans := rec.Scope(otelhttp.ScopeName)
	spantest.WantChildren(t, spans, parent)
	want := []struct{ method, path, status string }{{"POST", "/v1/keys", "201"}, {"GET", "/v1/whoami", "200"}, {"DELETE", "/v1/keys/" + keyOf(v), "204"}}
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d:\n%s", len(spans), len(want), spantest.Dump(spans))
	}
	for i, w := range want {
		a := spantest.Attrs(spans[i])
		if spans[i].Name != w.method || a["http.request.method"] != w.method || a["url.full"] != s.URL()+w.path ||
			a["server.address"] != u.Hostname() || a["server.port"] != u.Port() || a["http.response.status_code"] != w.status {
			t.Errorf("span %d: %s %v, want %s %s%s answered %s", i, spans[i].Name, a, w.method, s.URL(), w.path, w.status)
		}
	}

	// Failures: an answer that is an error, then no answer at all.
	rec.Reset()
	s.FailNext(1)
	if err := r.Test(ctx, rotators.TestRequest{Version: v, Material: g.Material}); err == nil {
		t.Fatal("Test passed against a 503")
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cfg.Test.URL = dead.URL + "/v1/whoami?" + query
	if err := mustNew(t, cfg).Test(ctx, rotators.TestRequest{Version: v, Material: g.Material}); err == nil {
		t.Fatal("Test passed against a closed server")
	}
	failed := rec.Scope(otelhttp.ScopeName)
	if len(failed) != 2 || failed[0].Status.Code != codes.Error || spantest.Attrs(failed[0])["http.response.status_code"] != "503" ||
		failed[1].Status.Code != codes.Error || spantest.Attrs(failed[1])["error.type"] == "" {
		t.Errorf("want a failed span for the 503 and one for the closed server:\n%s", spantest.Dump(failed))
	}
	all := rec.Spans()
	spantest.WantNoneOf(t, all, s.AdminToken(), g.Material.Get("key_secret").Reveal(), query, "query-token-5f2d")
	if !strings.Contains(spantest.Dump(all), "/v1/whoami") {
		t.Error("the spans do not name the path: the scan would prove nothing")
	}
}
