package notify

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

const testKey = "0123456789abcdef-signing-key"

// refs resolves references from a map, standing in for the worker's resolver; the
// receivers below are real HTTP servers.
type refs map[inventory.Ref]string

func (r refs) Reveal(_ context.Context, ref inventory.Ref) (secret.Sensitive, error) {
	v, ok := r[ref]
	if !ok {
		return secret.Sensitive{}, fmt.Errorf("%s is not set", ref)
	}
	return secret.NewSensitive(v), nil
}

// delivered is one request as a receiver saw it.
type delivered struct {
	header http.Header
	body   []byte
}

// receiver is a real webhook receiver: it answers with statuses in turn (the last one
// repeats), verifies every signature it gets and deduplicates by event ID like a careful
// receiver would.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []delivered
	verified []error
	handled  map[string]int // event ID -> times processed
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, delivered{header: r.Header.Clone(), body: body})
	rc.verified = append(rc.verified, Verify([]byte(testKey), r.Header.Get(HeaderSignature), body, time.Now(), 0))
	status := rc.statuses[min(len(rc.got)-1, len(rc.statuses)-1)]
	if status == http.StatusOK {
		if rc.handled == nil {
			rc.handled = map[string]int{}
		}
		rc.handled[r.Header.Get(HeaderEventID)]++
	}
	w.WriteHeader(status)
}

func (rc *receiver) requests() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivered(nil), rc.got...)
}

// serve starts a receiver on 127.0.0.1 and returns a sender and a route pointing at it.
func serve(t *testing.T, format string, statuses ...int) (*receiver, *Sender, inventory.NotifyRoute) {
	t.Helper()
	rc := &receiver{statuses: statuses}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	s := &Sender{Revealer: refs{"env:HOOK_URL": srv.URL + "/hooks/T000/B000/secretpath", "env:HOOK_KEY": testKey}, Backoff: 20 * time.Millisecond}
	return rc, s, inventory.NotifyRoute{Name: "security", URL: "env:HOOK_URL", SigningKey: "env:HOOK_KEY", Format: format}
}

func failure() Event {
	return Event{
		Type: RotationFailed, Time: time.Now(), SecretID: "prod/orders-db/app", Kind: "postgres", Tags: []string{"prod"},
		Step: "test", Outcome: "failed", ErrorClass: "credential_rejected", ErrorMessage: "password authentication failed",
		WorkflowID: "rotate/prod/orders-db/app", RunID: "run-1",
	}
}

func TestDeliveredEventIsSignedAndVerifies(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusOK)
	d, err := s.Send(context.Background(), route, failure())
	if err != nil || d.Status != 200 || d.Attempts != 1 {
		t.Fatalf("Send = %+v, %v", d, err)
	}
	got := rc.requests()
	if len(got) != 1 || rc.verified[0] != nil {
		t.Fatalf("receiver got %d request(s), verify: %v", len(got), rc.verified)
	}
	h := got[0].header
	if h.Get(HeaderEventID) != d.EventID || h.Get(HeaderEventType) != "rotation_failed" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", h)
	}
	var e Event
	if err := json.Unmarshal(got[0].body, &e); err != nil || e.ID != d.EventID || e.SecretID != "prod/orders-db/app" || e.ErrorClass != "credential_rejected" {
		t.Errorf("body %s: %v", got[0].body, err)
	}
	// What a receiver does with a forgery or a replay of this very delivery.
	sig := h.Get(HeaderSignature)
	tampered := []byte(strings.Replace(string(got[0].body), "failed", "rolled_back", 1))
	if err := Verify([]byte(testKey), sig, tampered, time.Now(), 0); !errors.Is(err, ErrForged) {
		t.Errorf("tampered body: %v", err)
	}
	if err := Verify([]byte(testKey), sig, got[0].body, time.Now().Add(10*time.Minute), 0); !errors.Is(err, ErrStale) {
		t.Errorf("replay 10 minutes later: %v", err)
	}
}

func TestServerErrorIsRetriedAndDeliveredOnce(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusInternalServerError, http.StatusOK)
	d, err := s.Send(context.Background(), route, failure())
	if err != nil || d.Attempts != 2 || d.Status != 200 {
		t.Fatalf("Send = %+v, %v", d, err)
	}
	got := rc.requests()
	if len(got) != 2 || got[0].header.Get(HeaderEventID) != got[1].header.Get(HeaderEventID) {
		t.Fatalf("want two requests with one event ID, got %d", len(got))
	}
	if rc.handled[d.EventID] != 1 || len(rc.handled) != 1 {
		t.Fatalf("receiver processed %v, want the event once", rc.handled)
	}
	for i, err := range rc.verified {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusBadRequest, http.StatusOK)
	d, err := s.Send(context.Background(), route, failure())
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ErrNotDelivered) || d.Attempts != 1 || d.Status != 400 || d.Err != err {
		t.Fatalf("Send = %+v, %v", d, err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("a 400 was retried: %d requests", n)
	}
	if !strings.Contains(err.Error(), `notify route "security"`) || !strings.Contains(err.Error(), "400") {
		t.Errorf("error does not say which route and what: %v", err)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusServiceUnavailable)
	d, err := s.Send(context.Background(), route, failure())
	if !errors.Is(err, ErrNotDelivered) || d.Attempts != DefaultMaxAttempts || len(rc.requests()) != DefaultMaxAttempts {
		t.Fatalf("Send = %+v, %v, %d requests", d, err, len(rc.requests()))
	}
}

// hungServer accepts requests and never answers them, until the test ends.
func hungServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: cleanups run last-in first-out
	return srv
}

// A receiver that accepts the connection and never answers is abandoned at the deadline.
func TestHungReceiverIsAbandonedAtTheDeadline(t *testing.T) {
	srv := hungServer(t)
	s := &Sender{Revealer: refs{"env:U": srv.URL, "env:K": testKey}}
	route := inventory.NotifyRoute{Name: "hung", URL: "env:U", SigningKey: "env:K", Format: inventory.NotifyFormatJSON}
	for name, send := range map[string]func() error{
		"caller's deadline": func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			_, err := s.Send(ctx, route, failure())
			return err
		},
		"sender's timeout": func() error {
			s2 := &Sender{Revealer: s.Revealer, Timeout: 400 * time.Millisecond}
			_, err := s2.Send(context.Background(), route, failure())
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := send()
			took := time.Since(start)
			if !errors.Is(err, ErrNotDelivered) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want a deadline failure, got %v", err)
			}
			if took < 350*time.Millisecond || took > 1500*time.Millisecond {
				t.Fatalf("took %s, want about the 400ms deadline", took)
			}
		})
	}
}

func TestSameEventTwiceCarriesTheSameID(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusOK)
	e := failure()
	if _, err := s.Send(context.Background(), route, e); err != nil {
		t.Fatal(err)
	}
	e.Time = e.Time.Add(30 * time.Second) // the retried activity runs later
	if _, err := s.Send(context.Background(), route, e); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if a, b := got[0].header.Get(HeaderEventID), got[1].header.Get(HeaderEventID); a == "" || a != b {
		t.Fatalf("event IDs %q and %q", a, b)
	}
	if rc.handled[got[0].header.Get(HeaderEventID)] != 2 || len(rc.handled) != 1 {
		t.Fatalf("receiver saw %v", rc.handled)
	}
}

func TestSlackBody(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatSlack, http.StatusOK)
	route.SigningKey = "" // Slack checks no signature; the route may leave it out
	e := failure()
	e.ErrorMessage = "role <!channel> & <https://evil.example|click>"
	if _, err := s.Send(context.Background(), route, e); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()[0]
	if got.header.Get(HeaderSignature) != "" {
		t.Errorf("unsigned route sent a signature")
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Elements []struct{ Type, Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(got.body, &msg); err != nil {
		t.Fatalf("%s: %v", got.body, err)
	}
	if !strings.Contains(msg.Text, "Rotation failed") || !strings.Contains(msg.Text, "prod/orders-db/app") {
		t.Errorf("text %q", msg.Text)
	}
	if len(msg.Blocks) != 3 || msg.Blocks[0].Type != "section" || msg.Blocks[1].Text.Type != "mrkdwn" || msg.Blocks[2].Type != "context" {
		t.Fatalf("blocks: %s", got.body)
	}
	if !strings.Contains(msg.Blocks[1].Text.Text, "credential_rejected") || strings.Contains(string(got.body), "<!channel>") || strings.Contains(string(got.body), "<https://evil") {
		t.Errorf("details not escaped for Slack: %s", msg.Blocks[1].Text.Text)
	}
	if !strings.Contains(msg.Blocks[2].Elements[0].Text, got.header.Get(HeaderEventID)) {
		t.Errorf("context lacks the event ID: %+v", msg.Blocks[2])
	}
}

func TestTLSReceiverWithItsCA(t *testing.T) {
	rc := &receiver{statuses: []int{http.StatusOK}}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	r := refs{"env:U": srv.URL + "/hook", "env:K": testKey}
	route := inventory.NotifyRoute{Name: "tls", URL: "env:U", SigningKey: "env:K", Format: inventory.NotifyFormatJSON}

	d, err := (&Sender{Revealer: r, RootCAs: pool}).Send(context.Background(), route, failure())
	if err != nil || d.Status != 200 || rc.verified[0] != nil {
		t.Fatalf("Send over TLS = %+v, %v", d, err)
	}
	// Without the CA the certificate is not trusted, and retrying cannot change that.
	d, err = (&Sender{Revealer: r, Backoff: time.Millisecond}).Send(context.Background(), route, failure())
	if !errors.Is(err, ErrNotDelivered) || d.Attempts != 1 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %+v, %v", d, err)
	}
}

// The webhook URL is a credential: no error names it, and nothing is sent to a URL that
// is not https or local.
func TestWebhookURLNeverInErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/services/T0/B0/CANARYpath?token=CANARYquery"
	l.Close()
	for name, tc := range map[string]struct {
		url      string
		want     error
		attempts int
	}{
		"connection refused": {closed, ErrNotDelivered, DefaultMaxAttempts},
		"plain http remote":  {"http://hooks.example.com/services/CANARYpath", ErrInsecureURL, 0},
		"not a URL":          {"CANARY not a url", ErrInsecureURL, 0},
	} {
		t.Run(name, func(t *testing.T) {
			s := &Sender{Revealer: refs{"env:U": tc.url, "env:K": testKey}, Backoff: time.Millisecond}
			d, err := s.Send(context.Background(), inventory.NotifyRoute{Name: "r", URL: "env:U", SigningKey: "env:K"}, failure())
			if !errors.Is(err, tc.want) || d.Attempts != tc.attempts {
				t.Fatalf("Send = %+v, %v", d, err)
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Fatalf("error names the URL: %v", err)
			}
			if !strings.Contains(err.Error(), "env:U") && tc.attempts == 0 {
				t.Errorf("error should name the reference: %v", err)
			}
		})
	}
}

func TestReferencesAndKeyProblems(t *testing.T) {
	_, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusOK)
	s.Revealer = refs{"env:HOOK_URL": s.Revealer.(refs)["env:HOOK_URL"], "env:HOOK_KEY": "short"}
	if _, err := s.Send(context.Background(), route, failure()); !errors.Is(err, ErrKeyTooShort) || strings.Contains(err.Error(), "short\"") {
		t.Fatalf("short key: %v", err)
	}
	s.Revealer = refs{}
	if _, err := s.Send(context.Background(), route, failure()); !errors.Is(err, ErrNotDelivered) || !strings.Contains(err.Error(), "env:HOOK_URL") {
		t.Fatalf("unresolved url: %v", err)
	}
}

func TestSendAllDoesNotWaitForADeadRouteBeforeOthers(t *testing.T) {
	rcOK, s, ok := serve(t, inventory.NotifyFormatJSON, http.StatusOK)
	hung := hungServer(t)
	r := s.Revealer.(refs)
	r["env:HUNG"] = hung.URL
	dead := inventory.NotifyRoute{Name: "dead", URL: "env:HUNG", SigningKey: "env:HOOK_KEY", Format: inventory.NotifyFormatJSON}
	s.Timeout = 300 * time.Millisecond
	start := time.Now()
	ds := s.SendAll(context.Background(), []inventory.NotifyRoute{dead, ok}, failure())
	if took := time.Since(start); took > 1200*time.Millisecond {
		t.Fatalf("SendAll took %s", took)
	}
	if ds[0].Route != "dead" || ds[0].Err == nil || ds[1].Route != "security" || ds[1].Err != nil || len(rcOK.requests()) != 1 {
		t.Fatalf("deliveries: %+v", ds)
	}
}

// A caller that gives up (a worker shutting down) is not kept waiting for the backoff.
func TestCancelDuringBackoffReturnsAtOnce(t *testing.T) {
	_, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusServiceUnavailable)
	s.Backoff = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	d, err := s.Send(ctx, route, failure())
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNotDelivered) || d.Attempts != 1 || d.Status != 503 {
		t.Fatalf("Send = %+v, %v", d, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %s after the cancel", took)
	}
}
