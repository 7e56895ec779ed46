package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
)

// usageConfig is exampleConfig with apitest's key endpoint declared as the in_use check,
// read by last-use time or, with flag set, by the API's own in_use boolean.
func usageConfig(s *apitest.Server, flag bool) httpapi.Config {
	cfg := exampleConfig(s)
	check := httpapi.UsageCheck{Call: httpapi.Call{
		URL:     s.URL() + "/v1/keys/{{.KeyID}}",
		Headers: map[string]string{"Authorization": "Bearer {{.Admin}}"},
		Gone:    []int{404},
	}}
	if flag {
		check.FlagPath = "data.in_use"
	} else {
		check.LastUsedPath = "data.last_used_at"
	}
	cfg.InUse = &check
	return cfg
}

func mustBuild(t *testing.T, cfg httpapi.Config) rotators.Minter {
	t.Helper()
	r, err := httpapi.Build(cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return r
}

// useKey authenticates one request with the key, as a consumer would.
func useKey(t *testing.T, s *apitest.Server, m secret.Material) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+m.Get(httpapi.FieldKeySecret).Reveal())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a consumer's request with the key: status %d", res.StatusCode)
	}
}

// mintWith mints a version with any Minter (Build returns one).
func mintWith(t *testing.T, r rotators.Minter, token string, number int) (secret.Version, secret.Material) {
	t.Helper()
	g, err := r.Mint(t.Context(), rotators.MintRequest{SecretID: "prod/payments/api", Token: secret.VersionToken(token)})
	if err != nil {
		t.Fatalf("Mint %s: %v", token, err)
	}
	return secret.Version{SecretID: "prod/payments/api", Token: secret.VersionToken(token), Number: number, Metadata: g.Metadata}, g.Material
}

func reporter(t *testing.T, r rotators.Minter) rotators.UsageReporter {
	t.Helper()
	u, ok := r.(rotators.UsageReporter)
	if !ok {
		t.Fatalf("Build with in_use declared returned %T, which is not a rotators.UsageReporter", r)
	}
	return u
}

func askInUse(t *testing.T, r rotators.UsageReporter, old secret.Version, keep *secret.Version, since time.Time) rotators.Usage {
	t.Helper()
	u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: old, Keep: keep, Since: since})
	if err != nil {
		t.Fatalf("InUse: %v", err)
	}
	return u
}

// Without a declared check the rotator does not claim to know: neither New's nor Build's
// rotator is a UsageReporter.
func TestNoUsageWithoutDeclaredCheck(t *testing.T) {
	s := apitest.Start(t)
	if _, ok := any(mustNew(t, exampleConfig(s))).(rotators.UsageReporter); ok {
		t.Error("New's Rotator is a UsageReporter")
	}
	if _, ok := mustBuild(t, exampleConfig(s)).(rotators.UsageReporter); ok {
		t.Error("Build without in_use returned a UsageReporter")
	}
	if _, ok := any(mustNew(t, usageConfig(s, false))).(rotators.UsageReporter); ok {
		t.Error("New's Rotator is a UsageReporter even with in_use: only Build's may be")
	}
}

// With last_used: a key used before the promotion is idle, one used after it is in use
// with the time the API reports, and a deleted key is idle.
func TestInUseByLastUsed(t *testing.T) {
	s := apitest.Start(t)
	built := mustBuild(t, usageConfig(s, false))
	r := reporter(t, built)
	v1, m1 := mintWith(t, built, "rotate/prod/payments/api/run-1", 1)
	if u := askInUse(t, r, v1, nil, time.Now().Add(-time.Hour)); u.InUse() {
		t.Fatalf("a key never used shows in use: %+v", u)
	}
	useKey(t, s, m1)
	v2, m2 := mintWith(t, built, "rotate/prod/payments/api/run-2", 2)
	promoted := time.Now()

	u := askInUse(t, r, v1, &v2, promoted)
	if u.InUse() || !strings.Contains(u.Checked, "data.last_used_at") || !strings.Contains(u.Checked, keyOf(v1)) {
		t.Fatalf("InUse after a use before the promotion = %+v; want idle, naming the key and the path", u)
	}
	useKey(t, s, m2) // a moved consumer uses the new key: not a use of the old one
	if u := askInUse(t, r, v1, &v2, promoted); u.InUse() {
		t.Fatalf("the new key's use counted for the old one: %+v", u)
	}

	useKey(t, s, m1) // a consumer that has not moved
	u = askInUse(t, r, v1, &v2, promoted)
	if len(u.Uses) != 1 || u.Uses[0].User != keyOf(v1) || !u.Uses[0].Since.Equal(s.LastUsed(keyOf(v1))) {
		t.Fatalf("InUse after a use after the promotion = %+v; want key %s last used at %v", u, keyOf(v1), s.LastUsed(keyOf(v1)))
	}
	if err := built.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if u := askInUse(t, r, v1, &v2, promoted); u.InUse() || !strings.Contains(u.Checked, "no longer exists") {
		t.Errorf("InUse of a deleted key = %+v, want idle, saying the key is gone", u)
	}
	// The kept version's key is never counted, and InUse sent no Idempotency-Key.
	if u := askInUse(t, r, v2, &v2, promoted); u.InUse() {
		t.Errorf("the kept key counted: %+v", u)
	}
	for _, req := range s.Requests() {
		if req.Method == http.MethodGet && strings.HasPrefix(req.Path, "/v1/keys/") && req.IdempotencyKey != "" {
			t.Errorf("in_use request %s sent Idempotency-Key %q", req.Path, req.IdempotencyKey)
		}
	}
	_, err := r.InUse(t.Context(), rotators.UsageRequest{Version: v1})
	if !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("InUse by last use without a promotion time = %v, want ErrInvalidConfig", err)
	}
}

// With last_used and a declared delay: an idle answer says from when it counts
// (NotBefore, the promotion plus the delay), so the revoke gate keeps waiting until the
// API has had time to show a use; without a delay, idle counts at once.
func TestInUseLastUsedDelay(t *testing.T) {
	s := apitest.Start(t)
	cfg := usageConfig(s, false)
	cfg.InUse.Delay = 90 * time.Minute
	built := mustBuild(t, cfg)
	r := reporter(t, built)
	v1, m1 := mintWith(t, built, "rotate/prod/payments/api/run-1", 1)
	useKey(t, s, m1) // before the rotation
	v2, _ := mintWith(t, built, "rotate/prod/payments/api/run-2", 2)
	promoted := time.Now()

	u := askInUse(t, r, v1, &v2, promoted)
	want := promoted.Add(90 * time.Minute)
	if u.InUse() || !u.NotBefore.Equal(want) || u.IdleAt(time.Now()) || !u.IdleAt(want) {
		t.Fatalf("InUse inside the delay = %+v; want no use, NotBefore %v, and not idle before it", u, want)
	}
	if !strings.Contains(u.Checked, "up to 1h30m late (in_use.delay)") || !strings.Contains(u.Checked, "idle counts from") {
		t.Errorf("Checked = %q; want the delay and when idle counts from", u.Checked)
	}
	useKey(t, s, m1) // shows at once on this API: a use is a use, delay or not
	if u := askInUse(t, r, v1, &v2, promoted); !u.InUse() {
		t.Errorf("a use after the promotion = %+v, want in use", u)
	}

	// No delay declared: idle is idle now.
	plain := reporter(t, mustBuild(t, usageConfig(s, false)))
	if u := askInUse(t, plain, v2, nil, time.Now()); u.InUse() || !u.NotBefore.IsZero() || !u.IdleAt(time.Now()) {
		t.Errorf("without a delay: %+v, want idle at once", u)
	}
}

// With flag: the API's own answer decides, whatever the promotion time.
func TestInUseByFlag(t *testing.T) {
	s := apitest.Start(t)
	built := mustBuild(t, usageConfig(s, true))
	r := reporter(t, built)
	v1, m1 := mintWith(t, built, "rotate/prod/payments/api/run-1", 1)
	if u := askInUse(t, r, v1, nil, time.Time{}); u.InUse() {
		t.Fatalf("a key never used shows in use: %+v", u)
	}
	useKey(t, s, m1)
	u := askInUse(t, r, v1, nil, time.Time{})
	if len(u.Uses) != 1 || u.Uses[0].User != keyOf(v1) || !strings.Contains(u.Uses[0].Detail, "data.in_use") {
		t.Fatalf("InUse after a recent use = %+v, want the API's answer", u)
	}
	s.InUseWindow(time.Nanosecond) // the API now counts only uses this instant
	if u := askInUse(t, r, v1, nil, time.Time{}); u.InUse() {
		t.Errorf("InUse when the API says false = %+v, want idle", u)
	}
}

// Failures are classified like the admin's other calls and never show the admin token.
func TestInUseFailures(t *testing.T) {
	s := apitest.Start(t)
	built := mustBuild(t, usageConfig(s, false))
	r := reporter(t, built)
	v1, _ := mintWith(t, built, "rotate/prod/payments/api/run-1", 1)
	since := time.Now()

	s.RefuseAdmin(true)
	_, err := r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Since: since})
	if !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Errorf("InUse with the admin refused = %v, want ErrPermissionDenied", err)
	}
	s.RefuseAdmin(false)

	s.FailNext(1)
	_, err = r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Since: since})
	var se *httpapi.StatusError
	if !errors.As(err, &se) || se.Status != 503 || se.Call != "in_use" || errors.Is(err, rotators.ErrInvalidConfig) || errors.Is(err, rotators.ErrPermissionDenied) {
		t.Errorf("InUse on a 503 = %v, want a plain, retryable StatusError of in_use", err)
	}
	if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), s.AdminToken()) {
		t.Error("an error shows the admin token")
	}

	_, err = r.InUse(t.Context(), rotators.UsageRequest{Version: secret.Version{Number: 3}, Since: since})
	if !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("InUse of a version without key_id = %v, want ErrInvalidConfig", err)
	}
}

// What the last_used path may find: an RFC 3339 string, Unix seconds or null; anything
// else is refused without quoting it. Each answer comes from a real HTTP server.
func TestInUseLastUsedFormats(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	cfg := configFor(srv.URL, "admin-token")
	cfg.InUse = &httpapi.UsageCheck{
		Call:         httpapi.Call{URL: srv.URL + "/keys/{{.KeyID}}", Headers: map[string]string{"Authorization": "Bearer {{.Admin}}"}},
		LastUsedPath: "last_used",
	}
	r := reporter(t, mustBuild(t, cfg))
	since := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	old := secret.Version{Number: 1, Metadata: map[string]string{httpapi.MetadataKeyID: "key_1"}}
	for _, tc := range []struct {
		body  string
		inUse bool
		err   string
	}{
		{`{"last_used": "2026-12-03T12:30:00Z"}`, true, ""},
		{`{"last_used": "2026-12-03T13:30:00.5+01:00"}`, true, ""},
		{`{"last_used": "2026-12-03T11:59:59Z"}`, false, ""},
		{`{"last_used": 1796313600}`, true, ""}, // 2026-12-03T16:00:00Z
		{`{"last_used": 1796299199.5}`, false, ""},
		{`{"last_used": null}`, false, ""},
		{`{"last_used": 1796313600000}`, false, "milliseconds"},
		{`{"last_used": "yesterday"}`, false, "RFC 3339"},
		{`{"last_used": true}`, false, "a boolean, not a time"},
		{`{"used": "2026-12-03T12:30:00Z"}`, false, `no member "last_used"`},
		{`not json`, false, "not valid JSON"},
	} {
		body = tc.body
		u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: old, Since: since})
		switch {
		case tc.err != "":
			if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: InUse = %v, want ErrInvalidConfig saying %q", tc.body, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "yesterday") {
				t.Errorf("%s: the error quotes the response", tc.body)
			}
		case err != nil:
			t.Errorf("%s: InUse: %v", tc.body, err)
		case u.InUse() != tc.inUse:
			t.Errorf("%s: in use = %v, want %v (%+v)", tc.body, u.InUse(), tc.inUse, u)
		}
	}
}

// New refuses an in_use check that cannot work, naming each field.
func TestInUseConfigValidation(t *testing.T) {
	s := apitest.Start(t)
	base := usageConfig(s, false)
	for name, tc := range map[string]struct {
		change func(*httpapi.UsageCheck)
		want   string
	}{
		"no path":          {func(c *httpapi.UsageCheck) { c.LastUsedPath = "" }, "in_use: say how to read the answer"},
		"both paths":       {func(c *httpapi.UsageCheck) { c.FlagPath = "data.in_use" }, "in_use: give last_used or flag, not both"},
		"bad path":         {func(c *httpapi.UsageCheck) { c.LastUsedPath = "data..x" }, "in_use.last_used:"},
		"bad flag path":    {func(c *httpapi.UsageCheck) { c.LastUsedPath, c.FlagPath = "", "[x]" }, "in_use.flag:"},
		"old key's secret": {func(c *httpapi.UsageCheck) { c.Headers = map[string]string{"Authorization": "Bearer {{.Secret}}"} }, "in_use.headers.Authorization: must not use {{.Secret}}"},
		"secret in url":    {func(c *httpapi.UsageCheck) { c.URL = s.URL() + "/v1/keys/{{.Admin}}" }, "in_use.url: uses .Admin"},
		"no url":           {func(c *httpapi.UsageCheck) { c.URL = "" }, "in_use.url: is empty"},
		"method":           {func(c *httpapi.UsageCheck) { c.Method = "TRACE" }, "in_use.method"},
		"idempotency":      {func(c *httpapi.UsageCheck) { c.Headers = map[string]string{"Idempotency-Key": "x"} }, "in_use.headers.Idempotency-Key"},
		"negative delay":   {func(c *httpapi.UsageCheck) { c.Delay = -time.Second }, "in_use.delay: must be between 0s and 168h"},
		"delay too long":   {func(c *httpapi.UsageCheck) { c.Delay = 8 * 24 * time.Hour }, "in_use.delay: must be between 0s and 168h"},
		"delay with flag":  {func(c *httpapi.UsageCheck) { c.LastUsedPath, c.FlagPath, c.Delay = "", "data.in_use", time.Hour }, "in_use.delay: only applies with last_used"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			check := *base.InUse
			tc.change(&check)
			cfg.InUse = &check
			_, err := httpapi.Build(cfg)
			if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
		})
	}
	// The method defaults to GET and is upper-cased; the caller's value is not changed.
	cfg := base
	check := *base.InUse
	check.Method = ""
	cfg.InUse = &check
	if _, err := httpapi.Build(cfg); err != nil {
		t.Fatalf("Build with the method left out: %v", err)
	}
	if check.Method != "" {
		t.Errorf("Build changed the caller's UsageCheck: method %q", check.Method)
	}
	check.ApplyDefaults()
	if check.Method != http.MethodGet {
		t.Errorf("ApplyDefaults: method %q, want GET", check.Method)
	}
}

// Problems, which the inventory's validation calls, reports the in_use check's own rules
// with the same field names, reads templates rather than text ({{.SecretID}} is not
// {{.Secret}}), and leaves the call's general checks to the caller.
func TestUsageCheckProblems(t *testing.T) {
	ok := httpapi.UsageCheck{Call: httpapi.Call{URL: "https://x.example/keys/{{.KeyID}}",
		Headers: map[string]string{"Authorization": "Bearer {{.Admin}}", "X-Owner": "{{.SecretID}}"}}, LastUsedPath: "data.last_used_at", Delay: time.Hour}
	if p := ok.Problems(); len(p) != 0 {
		t.Errorf("Problems of a good check = %+v", p)
	}
	bad := ok
	bad.Call.Method = "TRACE" // a general check: not Problems' to report
	bad.Headers = map[string]string{"Authorization": "Bearer {{.Secret}}"}
	bad.Body = `{"k": "{{.Secret}}"}`
	bad.FlagPath = "data.in_use"
	got := map[string]string{}
	for _, p := range bad.Problems() {
		got[p.Field] = p.Message
	}
	want := map[string]string{
		"in_use":                       "give last_used or flag, not both",
		"in_use.headers.Authorization": "must not use {{.Secret}}",
		"in_use.body":                  "must not use {{.Secret}}",
	}
	if len(got) != len(want) {
		t.Errorf("Problems = %v, want exactly the fields %v", got, want)
	}
	for f, w := range want {
		if !strings.Contains(got[f], w) {
			t.Errorf("Problems[%s] = %q, want %q", f, got[f], w)
		}
	}
}
