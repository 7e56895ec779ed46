package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The in_use call of an httpapi secret: decoded, its method left to the rotator's default
// (GET, set in one place: httpapi.UsageCheck.ApplyDefaults), and refused, with its place,
// when it cannot say whether a key is in use.
func TestHTTPAPIInUse(t *testing.T) {
	inv, err := Load("testdata/kinds.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	u := inv.Secrets[1].HTTPAPI.InUse
	if u == nil {
		t.Fatal("no in_use")
	}
	check := u.Check()
	check.ApplyDefaults()
	if check.Method != "GET" || check.LastUsedPath != u.LastUsed {
		t.Errorf("in_use as the rotator takes it = %+v, want method GET", check)
	}
	if u.Method != "" || u.URL != "https://api.example.com/v1/keys/{{.KeyID}}" || u.LastUsed != "data.last_used_at" ||
		u.Flag != "" || len(u.Gone) != 1 || u.Gone[0] != 404 || u.Headers["Authorization"] != "Bearer {{.Admin}}" {
		t.Errorf("in_use = %+v", u)
	}

	const text = `version: 1
secrets:
  - id: a/api
    kind: httpapi
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://x.example/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      in_use: {url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Secret}}"}, last_used: a, flag: b}
      key_id: id
      key_secret: secret
  - id: b/api
    kind: httpapi
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://x.example/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      in_use: {method: FETCH, url: "http://x.example/keys/{{.KeyID}}", lastused: a}
      key_id: id
      key_secret: secret
  - id: c/api
    kind: httpapi
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://x.example/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      in_use: {url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}", X-Owner: "{{.SecretID}}"}, flag: data.active, delay: 1h}
      key_id: id
      key_secret: secret
  - id: d/api
    kind: httpapi
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://x.example/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      in_use: {url: "https://x.example/keys/{{.KeyID}}", last_used: "data..x", delay: 9000h}
      key_id: id
      key_secret: secret
`
	path := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	probs, ok := err.(Errors)
	if !ok {
		t.Fatalf("Load: %v, want problems", err)
	}
	want := map[string]string{
		"secrets[0].httpapi.in_use":                       "not both",
		"secrets[0].httpapi.in_use.headers.Authorization": "must not use {{.Secret}}",
		"secrets[1].httpapi.in_use.method":                "unknown method \"FETCH\"",
		"secrets[1].httpapi.in_use.url":                   "plain http",
		"secrets[1].httpapi.in_use":                       "say how to read the answer",
		"secrets[2].httpapi.in_use.delay":                 "only applies with last_used",
		"secrets[3].httpapi.in_use.delay":                 "must be between 0s and 168h",
		"secrets[3].httpapi.in_use.last_used":             "",
	}
	for key, text := range want {
		field, _, _ := strings.Cut(key, "#")
		found := false
		for _, p := range probs {
			if p.Field == field && strings.Contains(p.Message, text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem on %s containing %q", field, text)
		}
	}
	// {{.SecretID}} is not {{.Secret}}: the rule reads the template, not the text.
	for _, p := range probs {
		if strings.HasPrefix(p.Field, "secrets[2]") && strings.Contains(p.Message, "Secret") {
			t.Errorf("{{.SecretID}} refused as {{.Secret}}: %s: %s", p.Field, p.Message)
		}
	}
	// The misspelt field is named too.
	if !strings.Contains(err.Error(), "lastused") {
		t.Errorf("the unknown field lastused is not reported")
	}
	if t.Failed() {
		t.Logf("problems:\n%v", err)
	}
}
