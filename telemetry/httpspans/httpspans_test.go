package httpspans_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/telemetry/httpspans"
)

// TestURLPolicies sends one request with user info, a secret-looking path and a query
// through each policy to a real server: SchemeHostPath keeps scheme://host/path, HostOnly
// no url.full at all; neither records the user info or the query, and both keep the
// method, host, port and status.
func TestURLPolicies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	target := "http://user:pass-5e1a@" + strings.TrimPrefix(srv.URL, "http://") + "/hooks/path-secret?token=query-secret"
	for policy, wantURL := range map[httpspans.URLPolicy]string{
		httpspans.SchemeHostPath: srv.URL + "/hooks/path-secret",
		httpspans.HostOnly:       "",
	} {
		rec := spantest.New(t)
		client := &http.Client{Transport: httpspans.Transport(nil, rec.Provider, policy)}
		ctx, parent := rec.Parent(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		spans := rec.Scope(otelhttp.ScopeName)
		spantest.WantChildren(t, spans, parent)
		a := spantest.Attrs(spans[0])
		if spans[0].Name != "PUT" || a["url.full"] != wantURL || a["server.address"] != host || a["server.port"] != port || a["http.response.status_code"] != "202" {
			t.Errorf("policy %d: %s %v, want url.full %q", policy, spans[0].Name, a, wantURL)
		}
		spantest.WantNoneOf(t, spans, "pass-5e1a", "query-secret", "token=")
		if policy == httpspans.HostOnly {
			spantest.WantNoneOf(t, spans, "path-secret")
		}
	}
}

// TestNoProviderNoWrapping: without a tracer provider the transport is the one given.
func TestNoProviderNoWrapping(t *testing.T) {
	base := http.DefaultTransport
	if got := httpspans.Transport(base, nil, httpspans.SchemeHostPath); got != base {
		t.Errorf("Transport with no provider wrapped the base transport: %T", got)
	}
}
