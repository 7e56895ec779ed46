package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators"
)

func heldEvent() Event {
	since := time.Date(2026, 12, 3, 12, 1, 0, 0, time.UTC)
	return Event{
		Type: RevokeHeld, Time: time.Now(), SecretID: "prod/orders-db/app", Kind: "postgres", Tags: []string{"prod"}, Owner: "payments",
		Step: "revoke_gate", Outcome: "revoke_held", WorkflowID: "rotate/prod/orders-db/app", RunID: "run-1",
		RevokeGate: &RevokeGate{State: "held", Since: since.Add(-time.Hour), HeldSince: since, Checked: `sessions of role "app_a" in pg_stat_activity`,
			Uses: []rotators.Use{{User: "app_a", Application: "orders-api\x1b[31m", Client: "10.0.0.5:41000", Since: since.Add(-2 * time.Hour), Detail: "backend pid 4242"}}},
	}
}

// A held revoke reaches a real receiver, routed by its type like any event, naming the
// session that holds it; the application name, chosen by the client, arrives cleaned.
func TestRevokeHeldIsRoutedAndNamesTheUses(t *testing.T) {
	rc, s, route := serve(t, inventory.NotifyFormatJSON, http.StatusOK)
	route.Events = []string{inventory.EventRevokeHeld, inventory.EventRevokeReleased}
	other := route
	other.Name, other.Events = "failures-only", []string{inventory.EventRotationFailed}
	router := NewRouter(inventory.Notifications{Routes: []inventory.NotifyRoute{route, other}})

	ds := Dispatch(context.Background(), router, s, heldEvent())
	if len(ds) != 1 || ds[0].Err != nil || ds[0].Route != "security" {
		t.Fatalf("deliveries %+v: want one, to the route that takes revoke_held", ds)
	}
	got := rc.requests()
	if len(got) != 1 || rc.verified[0] != nil || got[0].header.Get(HeaderEventType) != "revoke_held" {
		t.Fatalf("receiver got %d request(s), verify %v", len(got), rc.verified)
	}
	var e Event
	if err := json.Unmarshal(got[0].body, &e); err != nil {
		t.Fatal(err)
	}
	g := e.RevokeGate
	if g == nil || g.State != "held" || g.UsesTotal != 1 || len(g.Uses) != 1 {
		t.Fatalf("revoke_gate %+v in %s", g, got[0].body)
	}
	if u := g.Uses[0]; u.User != "app_a" || u.Application != "orders-api" || u.Client != "10.0.0.5:41000" || !u.Since.Equal(time.Date(2026, 12, 3, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("use %+v", u)
	}
	if strings.Contains(string(got[0].body), "\\u001b") {
		t.Errorf("an escape sequence reached the receiver: %s", got[0].body)
	}

	// The release goes to the same route, and a Slack route shows the session.
	rel := heldEvent()
	rel.Type, rel.RevokeGate.State = RevokeReleased, "idle"
	if ds := Dispatch(context.Background(), router, s, rel); len(ds) != 1 || ds[0].Err != nil {
		t.Fatalf("release deliveries %+v", ds)
	}
	if got := rc.requests(); len(got) != 2 || got[1].header.Get(HeaderEventType) != "revoke_released" {
		t.Fatalf("receiver got %d request(s)", len(got))
	}

	src, ss, slackRoute := serve(t, inventory.NotifyFormatSlack, http.StatusOK)
	if _, err := ss.Send(context.Background(), slackRoute, heldEvent().Seal()); err != nil {
		t.Fatal(err)
	}
	body := string(src.requests()[0].body)
	for _, want := range []string{"Revoke held", "app_a as orders-api", "from 10.0.0.5:41000", "since 2026-12-03 10:01:00Z", "backend pid 4242", "pg_stat_activity"} {
		if !strings.Contains(body, want) {
			t.Errorf("slack body lacks %q: %s", want, body)
		}
	}
}

// A long list of uses is capped, and says how many there were.
func TestRevokeGateUsesAreCapped(t *testing.T) {
	e := heldEvent()
	for range 50 {
		e.RevokeGate.Uses = append(e.RevokeGate.Uses, e.RevokeGate.Uses[0])
	}
	e = e.Seal()
	if len(e.RevokeGate.Uses) != maxGateUses || e.RevokeGate.UsesTotal != 51 {
		t.Fatalf("%d uses, total %d", len(e.RevokeGate.Uses), e.RevokeGate.UsesTotal)
	}
}
