package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
)

// mint calls Mint and collects what it reported through Minted.
func mint(t *testing.T, r *httpapi.Rotator, token string, abandoned ...map[string]string) (rotators.Generated, []map[string]string, error) {
	t.Helper()
	var minted []map[string]string
	g, err := r.Mint(t.Context(), rotators.MintRequest{
		SecretID: "prod/payments/api", Token: secret.VersionToken(token), Abandoned: abandoned,
		Minted: func(md map[string]string) { minted = append(minted, md) },
	})
	return g, minted, err
}

func mustMint(t *testing.T, r *httpapi.Rotator, token string, abandoned ...map[string]string) (secret.Version, secret.Material, []map[string]string) {
	t.Helper()
	g, minted, err := mint(t, r, token, abandoned...)
	if err != nil {
		t.Fatalf("Mint %s: %v", token, err)
	}
	return secret.Version{SecretID: "prod/payments/api", Token: secret.VersionToken(token), Number: 1, Metadata: g.Metadata}, g.Material, minted
}

func keyOf(v secret.Version) string { return v.Metadata[httpapi.MetadataKeyID] }

func TestMintMaterialAndMetadata(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	v, m, minted := mustMint(t, r, "rotate/prod/payments/api/run-1")
	id := keyOf(v)
	if !strings.HasPrefix(id, "key_") || !s.Live(id) {
		t.Fatalf("metadata key_id %q is not a live key", id)
	}
	if len(v.Metadata) != 1 || m.Get(httpapi.FieldKeyID).Reveal() != id || !strings.HasPrefix(m.Get(httpapi.FieldKeySecret).Reveal(), "sk_") || len(m) != 2 {
		t.Errorf("material %v / metadata %v: want key_id and key_secret, and key_id alone", m, v.Metadata)
	}
	if len(minted) != 1 || minted[0][httpapi.MetadataKeyID] != id {
		t.Errorf("Minted got %v, want key_id %s once", minted, id)
	}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: m}); err != nil {
		t.Errorf("Apply: %v", err)
	}
	if got := len(s.Requests()); got != 1 {
		t.Errorf("%d requests after Mint and Apply, want 1: Apply sends none", got)
	}
}

// The rotator sets Idempotency-Key: the token on Create, token/revoke on Revoke, and
// nothing on Test.
func TestIdempotencyKeyHeader(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	const token = "rotate/prod/payments/api/run-7"
	v, m, _ := mustMint(t, r, token)
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Fatal(err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatal(err)
	}
	want := []apitest.Request{
		{Method: "POST", Path: "/v1/keys", IdempotencyKey: token},
		{Method: "GET", Path: "/v1/whoami"},
		{Method: "DELETE", Path: "/v1/keys/" + keyOf(v), IdempotencyKey: token + "/revoke"},
	}
	if got := s.Requests(); !slices.Equal(got, want) {
		t.Errorf("requests\n%v\nwant\n%v", got, want)
	}
}

// A Mint retried under the same token, with the first key as abandoned, gets the same
// key back from an API that honours Idempotency-Key, and does not delete it.
func TestRetriedMintReturnsTheSameKey(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	v1, m1, minted := mustMint(t, r, "tok-1")
	v2, m2, _ := mustMint(t, r, "tok-1", minted...)
	if keyOf(v1) != keyOf(v2) || !m1.Get(httpapi.FieldKeySecret).Equal(m2.Get(httpapi.FieldKeySecret)) {
		t.Errorf("the repeated Mint gave key %s, want the same key and secret as %s", keyOf(v2), keyOf(v1))
	}
	if s.Created() != 1 || !s.Live(keyOf(v1)) {
		t.Errorf("%d keys created, first live %v; want one, live", s.Created(), s.Live(keyOf(v1)))
	}
	for _, req := range s.Requests() {
		if req.Method == "DELETE" {
			t.Errorf("the repeated Mint deleted a key: %v", req)
		}
	}
}

// Keys an interrupted Mint left behind are deleted, each with its own idempotency key;
// the one Mint returns is kept, and so are keys no one reported.
func TestMintRevokesAbandonedKeys(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	// Stand-ins for keys an API without idempotency keys made on earlier attempts.
	a, _, _ := mustMint(t, r, "earlier-a")
	b, _, _ := mustMint(t, r, "earlier-b")
	bystander, _, _ := mustMint(t, r, "someone-else")
	gone := map[string]string{httpapi.MetadataKeyID: "key_deleted_by_hand"}
	v, m, minted := mustMint(t, r, "tok-2", a.Metadata, b.Metadata, a.Metadata, gone, map[string]string{})
	_, _, _ = mustMint(t, r, "tok-2", minted...) // the same key again: nothing to delete

	if s.Live(keyOf(a)) || s.Live(keyOf(b)) {
		t.Error("an abandoned key is still live")
	}
	if !s.Live(keyOf(v)) || !s.Live(keyOf(bystander)) || s.Count() != 2 {
		t.Errorf("live: new key %v, bystander %v, %d in all; want exactly those two", s.Live(keyOf(v)), s.Live(keyOf(bystander)), s.Count())
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Errorf("Test of the minted key: %v", err)
	}
	var deletes []apitest.Request
	for _, req := range s.Requests() {
		if req.Method == "DELETE" {
			deletes = append(deletes, req)
		}
	}
	want := []apitest.Request{
		{Method: "DELETE", Path: "/v1/keys/" + keyOf(a), IdempotencyKey: "tok-2/revoke/" + keyOf(a)},
		{Method: "DELETE", Path: "/v1/keys/" + keyOf(b), IdempotencyKey: "tok-2/revoke/" + keyOf(b)},
		{Method: "DELETE", Path: "/v1/keys/key_deleted_by_hand", IdempotencyKey: "tok-2/revoke/key_deleted_by_hand"},
	}
	if !slices.Equal(deletes, want) {
		t.Errorf("deletes\n%v\nwant\n%v", deletes, want)
	}
}

// A failed deletion of an abandoned key fails Mint, after Minted reported the new key, so
// the retry finds both.
func TestMintFailsWhenAnAbandonedKeyStays(t *testing.T) {
	s := apitest.Start(t)
	cfg := exampleConfig(s)
	cfg.Revoke.Gone = nil // 404 is then a configuration error
	r := mustNew(t, cfg)
	_, minted, err := mint(t, r, "tok-3", map[string]string{httpapi.MetadataKeyID: "key_unknown"})
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "revoke.gone") {
		t.Errorf("Mint = %v, want ErrInvalidConfig suggesting revoke.gone", err)
	}
	if len(minted) != 1 || !s.Live(minted[0][httpapi.MetadataKeyID]) {
		t.Errorf("Minted got %v, want the live new key", minted)
	}
}

func TestRevoke(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	v, m, _ := mustMint(t, r, "tok-4")

	// Keep with the same key: nothing is sent.
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v, Keep: &v}); err != nil || !s.Live(keyOf(v)) || len(s.Requests()) != 1 {
		t.Fatalf("Revoke keeping the same key = %v, live %v, %d requests; want nil, live, no request", err, s.Live(keyOf(v)), len(s.Requests()))
	}
	other, _, _ := mustMint(t, r, "tok-5")
	for range 2 {
		if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v, Keep: &other}); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	if s.Live(keyOf(v)) || !s.Live(keyOf(other)) {
		t.Error("Revoke must delete the version's key and leave Keep's")
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); !errors.Is(err, rotators.ErrCredentialRejected) {
		t.Errorf("Test after Revoke = %v, want ErrCredentialRejected", err)
	}

	noKey := secret.Version{Token: "tok-6", Number: 3}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: noKey}); !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "no key_id") {
		t.Errorf("Revoke of a version without key_id = %v, want ErrInvalidConfig", err)
	}
}

// Test refuses material that belongs to another key without asking the API, which would
// vouch for the other key.
func TestTestRefusesAnotherKeysMaterial(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	v, _, _ := mustMint(t, r, "tok-7")
	_, other, _ := mustMint(t, r, "tok-8")
	n := len(s.Requests())
	err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: other})
	if !errors.Is(err, rotators.ErrCredentialRejected) || len(s.Requests()) != n {
		t.Errorf("Test = %v after %d requests; want ErrCredentialRejected and none", err, len(s.Requests())-n)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: secret.Material{}}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("Test without key_secret = %v, want ErrInvalidConfig", err)
	}
}

// sentinels are the errors a status is classified into; nil means a plain, retryable one.
var sentinels = []error{rotators.ErrInvalidConfig, rotators.ErrPermissionDenied, rotators.ErrCredentialRejected, rotators.ErrCheckFailed}

func wantClass(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) != (s == want) {
			t.Errorf("%s = %v; want class %v", what, err, want)
			return
		}
	}
}

func TestCreateStatuses(t *testing.T) {
	for status, want := range map[int]error{
		401: rotators.ErrPermissionDenied, 403: rotators.ErrPermissionDenied,
		400: rotators.ErrInvalidConfig, 422: rotators.ErrInvalidConfig, 404: rotators.ErrInvalidConfig, 302: rotators.ErrInvalidConfig,
		500: nil, 502: nil, 503: nil, 429: nil, 408: nil, 409: nil,
		200: rotators.ErrInvalidConfig, // not the configured 201
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := apitest.Start(t)
			r := mustNew(t, exampleConfig(s))
			s.FailNextWith(1, status)
			_, minted, err := mint(t, r, "tok")
			wantClass(t, "Mint", err, want)
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("POST %s/v1/keys: status %d", s.URL(), status)) {
				t.Errorf("error %q does not name the request and the status", err)
			}
			if len(minted) != 0 || s.Count() != 0 {
				t.Error("a failed create reported or made a key")
			}
			// The same step retried: the API has recovered.
			if _, _, err := mint(t, r, "tok"); err != nil || s.Count() != 1 {
				t.Errorf("retry: %v, %d keys", err, s.Count())
			}
		})
	}
}

func TestAdminRefused(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	v, _, _ := mustMint(t, r, "tok")
	s.RefuseAdmin(true)
	_, _, err := mint(t, r, "tok-2")
	wantClass(t, "Mint", err, rotators.ErrPermissionDenied)
	wantClass(t, "Revoke", r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}), rotators.ErrPermissionDenied)

	wrong := exampleConfig(s)
	wrong.Admin = secret.NewSensitive("not-the-admin")
	_, _, err = mint(t, mustNew(t, wrong), "tok-3")
	wantClass(t, "Mint with a wrong admin token", err, rotators.ErrPermissionDenied)
}

func TestTestStatuses(t *testing.T) {
	for status, want := range map[int]error{
		401: rotators.ErrCredentialRejected, 403: rotators.ErrCredentialRejected, 410: rotators.ErrCredentialRejected,
		400: rotators.ErrCheckFailed, 404: rotators.ErrCheckFailed, 409: rotators.ErrCheckFailed, 301: rotators.ErrCheckFailed,
		500: nil, 503: nil, 429: nil,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := apitest.Start(t)
			cfg := exampleConfig(s)
			cfg.Test.Gone = []int{410}
			r := mustNew(t, cfg)
			v, m, _ := mustMint(t, r, "tok")
			s.FailNextWith(1, status)
			wantClass(t, "Test", r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}), want)
			if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
				t.Errorf("Test once the API recovered: %v", err)
			}
		})
	}
}

func TestRevokeStatuses(t *testing.T) {
	for status, want := range map[int]error{
		401: rotators.ErrPermissionDenied, 403: rotators.ErrPermissionDenied,
		400: rotators.ErrInvalidConfig, 422: rotators.ErrInvalidConfig, 405: rotators.ErrInvalidConfig,
		500: nil, 503: nil, 429: nil, 409: nil,
	} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := apitest.Start(t)
			r := mustNew(t, exampleConfig(s))
			v, _, _ := mustMint(t, r, "tok")
			s.FailNextWith(1, status)
			wantClass(t, "Revoke", r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}), want)
			if !s.Live(keyOf(v)) {
				t.Error("a failed revoke deleted the key")
			}
		})
	}
	// A gone status, or a configured success status, is success.
	s := apitest.Start(t)
	cfg := exampleConfig(s)
	cfg.Revoke.Success = []int{204}
	cfg.Revoke.Gone = []int{404, 410}
	r := mustNew(t, cfg)
	v, _, _ := mustMint(t, r, "tok")
	s.FailNextWith(1, 410)
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Errorf("Revoke answered 410 (gone) = %v, want nil", err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil || s.Live(keyOf(v)) {
		t.Errorf("Revoke answered 204 = %v, live %v; want nil and deleted", err, s.Live(keyOf(v)))
	}
}

// Network failures and timeouts are plain errors, to be retried.
func TestNetworkFailuresAreRetryable(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	cfg := configFor(slow.URL, "admin")
	cfg.Timeout = 50 * time.Millisecond
	_, _, err := mint(t, mustNew(t, cfg), "tok")
	wantClass(t, "Mint against a server that does not answer", err, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Mint = %v, want a deadline error", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	r := mustNew(t, configFor(closed.URL, "admin"))
	_, _, err = mint(t, r, "tok")
	wantClass(t, "Mint against a closed port", err, nil)
	v := secret.Version{Token: "t", Metadata: map[string]string{httpapi.MetadataKeyID: "key_1"}}
	m := secret.Material{httpapi.FieldKeyID: secret.NewSensitive("key_1"), httpapi.FieldKeySecret: secret.NewSensitive("sk_1")}
	wantClass(t, "Test against a closed port", r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}), nil)
	wantClass(t, "Revoke against a closed port", r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}), nil)
}

// stub is an API that answers every request with status and body, and records what it
// received.
type stub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func newStub(t *testing.T, status int, body string) *stub {
	s := &stub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// Errors name the method, scheme://host/path and the status, never the query string or
// the body, and never any credential.
func TestErrorsHoldNoMaterial(t *testing.T) {
	const leak = "sk_live_in_the_body"
	api := newStub(t, 500, `{"error": "boom", "secret": "`+leak+`"}`)
	cfg := configFor(api.URL, adminValue)
	cfg.Create.URL = api.URL + "/v1/keys?owner={{.SecretID}}"
	r := mustNew(t, cfg)
	_, _, err := mint(t, r, "tok")
	msg := fmt.Sprintf("%v | %+v | %#v", err, err, err)
	if !strings.Contains(err.Error(), "httpapi create: POST "+api.URL+"/v1/keys: status 500 Internal Server Error") {
		t.Errorf("error %q does not name the call, request and status", err)
	}
	for _, bad := range []string{leak, "owner=", "prod%2Fpayments", adminValue} {
		if strings.Contains(msg, bad) {
			t.Errorf("error %q holds %q", msg, bad)
		}
	}

	// A successful create whose secret cannot be found, and one whose ID is the secret.
	ok := newStub(t, 201, `{"data": {"id": "key_1", "secret": "`+leak+`"}, "other": "`+leak+`"}`)
	for _, paths := range [][2]string{{"data.id", "data.missing"}, {"other", "data.secret"}, {"data.id", "data"}} {
		cfg := configFor(ok.URL, adminValue)
		cfg.KeyIDPath, cfg.KeySecretPath = paths[0], paths[1]
		_, minted, err := mint(t, mustNew(t, cfg), "tok")
		if !errors.Is(err, rotators.ErrInvalidConfig) {
			t.Errorf("paths %v: Mint = %v, want ErrInvalidConfig", paths, err)
		}
		if msg := fmt.Sprintf("%v %+v", err, minted); strings.Contains(msg, leak) || strings.Contains(msg, adminValue) {
			t.Errorf("paths %v: error or Minted holds material: %s", paths, msg)
		}
	}

	// Test sends the key; its failures must not repeat it.
	rejected := newStub(t, 401, `{"error": "invalid key `+leak+`"}`)
	r = mustNew(t, configFor(rejected.URL, adminValue))
	v := secret.Version{Token: "t", Metadata: map[string]string{httpapi.MetadataKeyID: "key_1"}}
	err = r.Test(t.Context(), rotators.TestRequest{Version: v, Material: secret.Material{httpapi.FieldKeySecret: secret.NewSensitive(leak)}})
	if !errors.Is(err, rotators.ErrCredentialRejected) || strings.Contains(fmt.Sprintf("%+v", err), leak) {
		t.Errorf("Test = %v, want ErrCredentialRejected without the key", err)
	}
}

// A create response that reports the ID but hides the secret still reports the ID, so an
// interrupted step can delete the key.
func TestMintedReportedWhenTheSecretIsMissing(t *testing.T) {
	s := apitest.Start(t)
	cfg := exampleConfig(s)
	cfg.KeySecretPath = "data.key"
	_, minted, err := mint(t, mustNew(t, cfg), "tok")
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), `key_secret path "data.key": "data" has no member "key"`) {
		t.Errorf("Mint = %v, want ErrInvalidConfig explaining the path", err)
	}
	if len(minted) != 1 || !s.Live(minted[0][httpapi.MetadataKeyID]) {
		t.Errorf("Minted got %v, want the key the API made", minted)
	}
	cfg.KeyIDPath = "data.keys[0].id"
	_, minted, err = mint(t, mustNew(t, cfg), "tok-2")
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "cannot delete") || len(minted) != 0 {
		t.Errorf("Mint = %v, Minted %v; want ErrInvalidConfig warning of a key that cannot be deleted", err, minted)
	}
}

// What the API receives: the rendered headers and body, JSON by default, the version token
// as the idempotency key, and the key ID path-escaped in the URL.
func TestRequestsAsSent(t *testing.T) {
	api := newStub(t, 201, `{"data": {"id": "org/key 1", "secret": "sk_1"}}`)
	cfg := configFor(api.URL, adminValue)
	cfg.Create.Headers["X-Team"] = "payments"
	r := mustNew(t, cfg)
	v, _, _ := mustMint(t, r, "run/1")
	// The stub answers 201 to the DELETE too: a 2xx, so success.
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.requests) != 2 {
		t.Fatalf("%d requests, want 2", len(api.requests))
	}
	create, revoke := api.requests[0], api.requests[1]
	for name, want := range map[string]string{
		"Authorization": "Bearer " + adminValue, "X-Team": "payments", "Content-Type": "application/json",
		"Idempotency-Key": "run/1", "Accept": "application/json",
	} {
		if got := create.Header.Get(name); got != want {
			t.Errorf("create header %s = %q, want %q", name, got, want)
		}
	}
	if want := `{"name": "prod/payments/api", "description": "keyturn run/1"}`; api.bodies[0] != want {
		t.Errorf("create body %s, want %s", api.bodies[0], want)
	}
	if got := revoke.URL.EscapedPath(); revoke.Method != "DELETE" || got != "/v1/keys/org%2Fkey%201" {
		t.Errorf("revoke %s %s, want DELETE /v1/keys/org%%2Fkey%%201", revoke.Method, got)
	}
	if revoke.Header.Get("Idempotency-Key") != "run/1/revoke" || revoke.Header.Get("Content-Type") != "" {
		t.Errorf("revoke headers %v", revoke.Header)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	target := apitest.Start(t)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL()+"/v1/keys", http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	_, _, err := mint(t, mustNew(t, configFor(redirect.URL, target.AdminToken())), "tok")
	if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Errorf("Mint = %v, want ErrInvalidConfig about the redirect", err)
	}
	if len(target.Requests()) != 0 {
		t.Error("the redirect was followed, with the admin token")
	}
}

// A response is read up to 1 MiB, even from a server that never stops sending.
func TestResponsesAreBounded(t *testing.T) {
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		chunk := []byte(`{"data": {"id": "key_1", "secret": "sk_1", "pad": "` + strings.Repeat("x", 64<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	cfg := configFor(endless.URL, adminValue)
	// Reading without a bound would run into this timeout instead.
	cfg.Timeout = 5 * time.Second
	_, _, err := mint(t, mustNew(t, cfg), "tok")
	if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("Mint = %v, want an error about the response size", err)
	}
}
