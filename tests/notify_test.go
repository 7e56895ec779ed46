package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

// receiver is a webhook receiver as a user would write one: it verifies every delivery's
// signature before it believes it and keeps what it accepted.
type receiver struct {
	key []byte

	mu       sync.Mutex
	events   []notify.Event
	bodies   []string
	rejected int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := notify.Verify(rc.key, r.Header.Get(notify.HeaderSignature), body, time.Now(), 0); err != nil {
		rc.rejected++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e notify.Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID != r.Header.Get(notify.HeaderEventID) {
		rc.rejected++
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, e)
	rc.bodies = append(rc.bodies, string(body))
}

func (rc *receiver) received() ([]notify.Event, []string, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]notify.Event(nil), rc.events...), append([]string(nil), rc.bodies...), rc.rejected
}

// TestRotationProblemsReachAWebhook: a rotation whose admin password is wrong tells a real
// receiver, signed and naming the secret's owner, that a revoke is outstanding, and once it is fixed that the rotation
// rolled back; no material in any body, and a rotation that works sends nothing.
func TestRotationProblemsReachAWebhook(t *testing.T) {
	rc := &receiver{key: []byte("webhook-signing-key-0123456789")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("KEYTURN_TEST_NOTIFY_URL", srv.URL)
	t.Setenv("KEYTURN_TEST_NOTIFY_KEY", string(rc.key))
	env := testenv.New(t, testenv.Options{
		Secrets: []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s", Owner: "payments"}},
		Extra: "notifications:\n  routes:\n    - name: security\n      url: env:KEYTURN_TEST_NOTIFY_URL\n      format: json\n" +
			"      signing_key: env:KEYTURN_TEST_NOTIFY_KEY\n      events: [rotation_failed, rotation_rolled_back, revoke_outstanding]\n",
	})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	if events, _, _ := rc.received(); len(events) != 0 {
		t.Fatalf("a rotation that works must notify nobody, got %+v", events)
	}
	_, inUse := current(t, env, id)
	_, admin, err := env.Store.Read(ctx, "admin/e2e", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Put(ctx, "admin/e2e", secret.Material{"password": secret.NewSensitive("Not-The-Admin-Password-2")}, map[string]string{"username": "keyturn_admin"}); err != nil {
		t.Fatal(err)
	}
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code == 0 || !strings.Contains(out, "revoke_outstanding") {
		t.Fatalf("rotate with a wrong admin password exited %d:\n%s", code, out)
	}
	waitFor(t, time.Minute, "the revoke_outstanding notification", func() bool {
		events, _, _ := rc.received()
		return len(events) >= 1
	})
	if _, err := env.Store.Put(ctx, "admin/e2e", admin, map[string]string{"username": "keyturn_admin"}); err != nil {
		t.Fatal(err)
	}
	if code, out := keyturn(t, env, "retry-now", string(id)); code != 0 {
		t.Fatalf("retry-now exited %d:\n%s", code, out)
	}
	waitFor(t, 2*time.Minute, "the rolled-back notification", func() bool {
		events, _, _ := rc.received()
		return len(events) >= 2
	})

	events, bodies, rejected := rc.received()
	if rejected != 0 || len(events) != 2 {
		t.Fatalf("want 2 signed events and no rejected delivery, got %d events, %d rejected: %+v", len(events), rejected, events)
	}
	for i, want := range []notify.Type{notify.RevokeOutstanding, notify.RotationRolledBack} {
		e := events[i]
		if e.Type != want || e.SecretID != id || e.Kind != "postgres" || e.Owner != "payments" || e.WorkflowID != "rotate/e2e/app" || e.RunID == "" || e.ID == "" {
			t.Fatalf("event %d: want %s for %s, got %+v", i, want, id, e)
		}
	}
	if events[0].ErrorMessage == "" || events[1].Outcome != "rolled_back" {
		t.Fatalf("events must say what happened: %+v", events)
	}
	for _, b := range bodies {
		for _, s := range []string{inUse.Get("password").Reveal(), admin.Get("password").Reveal(), "Not-The-Admin-Password-2", string(rc.key)} {
			if strings.Contains(b, s) {
				t.Fatal("a notification body carries material")
			}
		}
	}
}
