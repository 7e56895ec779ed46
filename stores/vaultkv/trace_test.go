package vaultkv

import (
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"

	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// TestSpans: with a tracer provider, each request the store makes to a real Vault is a
// client span under the caller's, with its method, Vault's host and port, the path and
// the status; no span holds the token or the material. A read of a path the token may
// not read is a failed span.
func TestSpans(t *testing.T) {
	srv := server(t)
	rec := spantest.New(t)
	s := openStore(t, Config{Address: srv.Addr, Auth: Auth{Token: secret.NewSensitive(srv.Token)}, TracerProvider: rec.Provider})
	ctx, parent := rec.Parent(t.Context())
	u, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	rec.Reset() // the login at New had no parent
	id := uniqueID(t, "spans")
	const material = "vault-span-canary-31c7"
	v, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "t1", Material: pw(material), Metadata: map[string]string{"role": "app_a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, id, v.Token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read(ctx, id, secret.StageCurrent); err != nil {
		t.Fatal(err)
	}
	spans := rec.Scope(otelhttp.ScopeName)
	spantest.WantChildren(t, spans, parent)
	paths := map[string]bool{}
	for _, sp := range spans {
		a := spantest.Attrs(sp)
		if a["server.address"] != u.Hostname() || a["server.port"] != u.Port() || a["http.response.status_code"] == "" || sp.Name != a["http.request.method"] {
			t.Errorf("span %s: %v", sp.Name, a)
		}
		full, ok := strings.CutPrefix(a["url.full"], srv.Addr+"/v1/")
		if !ok || strings.Contains(full, "?") {
			t.Errorf("span %s: url.full %q is not Vault's address and a path without a query", sp.Name, a["url.full"])
		}
		paths[full] = true
	}
	if !paths["secret/data/"+string(id)] {
		t.Errorf("no span for the consumer path secret/data/%s; paths: %v", id, paths)
	}

	// A path the token may not read, through the API client the store shares.
	rec.Reset()
	limited := s.client.WithNamespace("")
	limited.SetToken("not-a-token-6be1")
	if _, err := limited.Logical().ReadWithContext(ctx, "secret/data/"+string(id)); err == nil {
		t.Fatal("a read with a bad token passed")
	}
	failed := rec.Scope(otelhttp.ScopeName)
	if len(failed) == 0 || failed[0].Status.Code != codes.Error || spantest.Attrs(failed[0])["http.response.status_code"] != "403" {
		t.Errorf("want a failed span with status 403:\n%s", spantest.Dump(failed))
	}
	spantest.WantNoneOf(t, rec.Spans(), srv.Token, material, "not-a-token-6be1")
}
