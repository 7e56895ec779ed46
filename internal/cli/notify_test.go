package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/notify"
)

// TestNotifyTestEndToEnd runs `keyturn notify test` against real receivers on
// 127.0.0.1: a signed JSON route whose references come from the environment, a Slack
// route whose URL is kept in the file store, and a route whose receiver refuses.
func TestNotifyTestEndToEnd(t *testing.T) {
	const key = "cli-test-signing-key-0123456789"
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, body)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/json/") {
			if err := notify.Verify([]byte(key), r.Header.Get(notify.HeaderSignature), body, time.Now(), 0); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer ok.Close()
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
	}))
	defer refuse.Close()

	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if code, out := run(t, ok.URL+"/slack/T0/B0/SLACKsecretPATH\n", "put", "notify/chat", "--field", "url", "--store-dir", store); code != 0 {
		t.Fatalf("put: %s", out)
	}
	t.Setenv("KT_HOOK_URL", ok.URL+"/json/JSONsecretPATH")
	t.Setenv("KT_HOOK_KEY", key)
	t.Setenv("KT_DEAD_URL", refuse.URL+"/gone")
	inv := filepath.Join(dir, "inv.yaml")
	text := `version: 1
secrets:
  - id: prod/orders-db/app
    kind: awsiam
    awsiam: {user: orders-app}
notifications:
  routes:
    - name: security
      url: env:KT_HOOK_URL
      signing_key: env:KT_HOOK_KEY
      events: [rotation_failed]
    - name: chat
      url: file:notify/chat#url
      format: slack
    - name: dead
      url: env:KT_DEAD_URL
      signing_key: env:KT_HOOK_KEY
`
	if err := os.WriteFile(inv, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out := run(t, "", "notify", "test", "-f", inv, "--store-dir", store)
	if code != 1 {
		t.Fatalf("a failed route must exit 1, got %d:\n%s", code, out)
	}
	t.Logf("keyturn notify test printed:\n%s", out)
	for _, want := range []string{
		", 3 route(s):",
		"security: delivered (200 OK, 1 attempt(s))",
		"chat: delivered (200 OK, 1 attempt(s))",
		`dead: FAILED: notify route "dead": notification not delivered: attempt 1 of 4: receiver refused it: status 410 Gone`,
		"1 of 3 notification route(s) failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secretPATH") || strings.Contains(out, key) {
		t.Errorf("output shows a webhook URL or the key:\n%s", out)
	}
	mu.Lock()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(got))
	}
	for i, r := range got {
		var m map[string]any
		if err := json.Unmarshal(bodies[i], &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/json/"):
			if m["type"] != "test" || m["id"] != r.Header.Get(notify.HeaderEventID) {
				t.Errorf("json body %s", bodies[i])
			}
		case r.URL.Path == "/slack/T0/B0/SLACKsecretPATH":
			if _, ok := m["text"].(string); !ok || r.Header.Get(notify.HeaderSignature) != "" {
				t.Errorf("slack body %s", bodies[i])
			}
		default:
			t.Errorf("unexpected path %s", r.URL.Path)
		}
	}
	mu.Unlock()

	code, out = run(t, "", "notify", "test", "--route", "security", "-f", inv, "--store-dir", store)
	if code != 0 || !strings.Contains(out, ", 1 route(s):") || !strings.Contains(out, "security: delivered") {
		t.Fatalf("--route security: %d\n%s", code, out)
	}
	code, out = run(t, "", "notify", "test", "--route", "nope", "-f", inv)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("its routes: %s", "security, chat, dead")) {
		t.Fatalf("--route nope: %d\n%s", code, out)
	}
}

func TestNotifyTestWithoutRoutes(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(inv, []byte("version: 1\nsecrets:\n  - id: a/b\n    kind: awsiam\n    awsiam: {user: u}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run(t, "", "notify", "test", "-f", inv)
	if code != 1 || !strings.Contains(out, "has no notification routes") {
		t.Fatalf("%d\n%s", code, out)
	}
}
