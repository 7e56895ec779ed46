package apitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
)

// call sends one request and returns the status and the decoded JSON body, if any.
func call(t *testing.T, s *apitest.Server, method, path, token, idem, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: response is not JSON: %v", method, path, err)
		}
	}
	return res.StatusCode, out
}

// create makes a key and returns its ID and secret.
func create(t *testing.T, s *apitest.Server, idem, body string) (string, string) {
	t.Helper()
	status, out := call(t, s, "POST", "/v1/keys", s.AdminToken(), idem, body)
	if status != http.StatusCreated {
		t.Fatalf("create: status %d %v", status, out)
	}
	data, _ := out["data"].(map[string]any)
	id, _ := data["id"].(string)
	secret, _ := data["secret"].(string)
	if !strings.HasPrefix(id, "key_") || !strings.HasPrefix(secret, "sk_") {
		t.Fatalf("create: response %v, want data.id key_… and data.secret sk_…", out)
	}
	return id, secret
}

func TestKeyLifecycle(t *testing.T) {
	s := apitest.Start(t)
	id, secret := create(t, s, "", `{"name": "a"}`)
	if !s.Live(id) || s.Count() != 1 || s.Created() != 1 {
		t.Fatalf("after create: live %v, count %d, created %d", s.Live(id), s.Count(), s.Created())
	}
	if status, out := call(t, s, "GET", "/v1/whoami", secret, "", ""); status != 200 || out["key_id"] != id {
		t.Errorf("whoami = %d %v, want 200 with key_id %s", status, out, id)
	}
	if status, _ := call(t, s, "GET", "/v1/whoami", "sk_unknown", "", ""); status != 401 {
		t.Errorf("whoami with an unknown key = %d, want 401", status)
	}
	if status, _ := call(t, s, "DELETE", "/v1/keys/"+id, secret, "", ""); status != 401 || !s.Live(id) {
		t.Errorf("a key deleting itself = %d, want 401 and the key live", status)
	}
	if status, _ := call(t, s, "DELETE", "/v1/keys/"+id, s.AdminToken(), "", ""); status != 204 || s.Live(id) || s.Count() != 0 {
		t.Errorf("delete = %d, live %v, want 204 and gone", status, s.Live(id))
	}
	if status, _ := call(t, s, "DELETE", "/v1/keys/"+id, s.AdminToken(), "", ""); status != 404 {
		t.Errorf("second delete = %d, want 404", status)
	}
	if status, _ := call(t, s, "GET", "/v1/whoami", secret, "", ""); status != 401 {
		t.Errorf("whoami with a deleted key = %d, want 401", status)
	}
	if status, _ := call(t, s, "POST", "/v1/keys", "wrong", "", ""); status != 401 || s.Created() != 1 {
		t.Errorf("create with a wrong admin token = %d, want 401 and no key", status)
	}
}

func TestIdempotency(t *testing.T) {
	s := apitest.Start(t)
	id1, secret1 := create(t, s, "tok-1", `{"name": "a"}`)
	id2, secret2 := create(t, s, "tok-1", `{"name": "a"}`)
	if id1 != id2 || secret1 != secret2 || s.Created() != 1 {
		t.Errorf("a repeated request got %s, want the same key and secret as %s; %d keys created", id2, id1, s.Created())
	}
	if status, _ := call(t, s, "POST", "/v1/keys", s.AdminToken(), "tok-1", `{"name": "b"}`); status != 422 || s.Created() != 1 {
		t.Errorf("same key, other body = %d, want 422 and no key", status)
	}
	if id3, _ := create(t, s, "tok-2", `{"name": "a"}`); id3 == id1 || s.Created() != 2 {
		t.Error("another idempotency key must make another key")
	}
	if idA, _ := create(t, s, "", ""); idA == id1 {
		t.Error("a request without an idempotency key must make a new key")
	}
}

func TestInjectedFailures(t *testing.T) {
	s := apitest.Start(t)
	s.FailNext(2)
	for range 2 {
		if status, _ := call(t, s, "POST", "/v1/keys", s.AdminToken(), "tok", ""); status != 503 {
			t.Errorf("status %d, want 503", status)
		}
	}
	if s.Created() != 0 {
		t.Error("a failed request made a key")
	}
	id, _ := create(t, s, "tok", "")

	s.FailNextWith(1, 429)
	if status, _ := call(t, s, "GET", "/v1/whoami", "x", "", ""); status != 429 {
		t.Errorf("status %d, want 429", status)
	}

	s.RefuseAdmin(true)
	if status, _ := call(t, s, "DELETE", "/v1/keys/"+id, s.AdminToken(), "", ""); status != 403 || !s.Live(id) {
		t.Errorf("refused admin: delete = %d, want 403 and the key live", status)
	}
	if status, _ := call(t, s, "POST", "/v1/keys", s.AdminToken(), "", ""); status != 403 {
		t.Errorf("refused admin: create = %d, want 403", status)
	}
	s.RefuseAdmin(false)
	if !s.Delete(id) || s.Delete(id) || s.Live(id) {
		t.Error("Delete must delete a live key once")
	}

	want := []apitest.Request{
		{Method: "POST", Path: "/v1/keys", IdempotencyKey: "tok"},
		{Method: "POST", Path: "/v1/keys", IdempotencyKey: "tok"},
		{Method: "POST", Path: "/v1/keys", IdempotencyKey: "tok"},
		{Method: "GET", Path: "/v1/whoami"},
		{Method: "DELETE", Path: "/v1/keys/" + id},
		{Method: "POST", Path: "/v1/keys"},
	}
	if got := s.Requests(); !slices.Equal(got, want) {
		t.Errorf("requests\n%v\nwant\n%v", got, want)
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := apitest.Start(t), apitest.StartTLS(t)
	if a.AdminToken() == b.AdminToken() || a.AdminToken() == "" {
		t.Error("each server needs its own random admin token")
	}
	if !strings.HasPrefix(a.URL(), "http://127.0.0.1:") || !strings.HasPrefix(b.URL(), "https://127.0.0.1:") {
		t.Errorf("URLs %s and %s, want http and https on 127.0.0.1", a.URL(), b.URL())
	}
	id, _ := create(t, b, "", "")
	if a.Live(id) || !b.Live(id) {
		t.Error("a key made on one server shows on the other")
	}
	if status, _ := call(t, a, "POST", "/v1/keys", b.AdminToken(), "", ""); status != 401 {
		t.Errorf("one server's admin token on another = %d, want 401", status)
	}
}

// GET /v1/keys/{id} shows when a key last authenticated a request, never its secret, and
// answers 404 once it is deleted; only the admin may ask.
func TestKeyLastUsed(t *testing.T) {
	s := apitest.Start(t)
	id, secret := create(t, s, "", "")
	describe := func() (int, map[string]any) {
		status, out := call(t, s, "GET", "/v1/keys/"+id, s.AdminToken(), "", "")
		data, _ := out["data"].(map[string]any)
		return status, data
	}
	status, data := describe()
	if status != http.StatusOK || data["id"] != id || data["last_used_at"] != nil || data["in_use"] != false {
		t.Fatalf("a key never used: %d %v, want last_used_at null and in_use false", status, data)
	}
	if status, _ := call(t, s, "GET", "/v1/whoami", secret, "", ""); status != http.StatusOK {
		t.Fatalf("whoami: %d", status)
	}
	status, data = describe()
	at, _ := data["last_used_at"].(string)
	if status != http.StatusOK || at == "" || data["in_use"] != true || !s.LastUsed(id).Equal(mustParse(t, at)) {
		t.Fatalf("after a use: %d %v, want last_used_at %v and in_use true", status, data, s.LastUsed(id))
	}
	for _, v := range data {
		if v == secret {
			t.Fatal("the key's description shows its secret")
		}
	}
	if status, _ := call(t, s, "GET", "/v1/keys/"+id, secret, "", ""); status != http.StatusUnauthorized {
		t.Errorf("the key itself asking: %d, want 401", status)
	}
	s.Delete(id)
	if status, _ := describe(); status != http.StatusNotFound {
		t.Errorf("a deleted key: %d, want 404", status)
	}
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
