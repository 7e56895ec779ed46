package notify

import (
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

func TestRouterSelectsByTypeSecretTagAndOwner(t *testing.T) {
	router := NewRouter(inventory.Notifications{Routes: []inventory.NotifyRoute{
		{Name: "all"},
		{Name: "failures", Events: []string{inventory.EventRotationFailed}},
		{Name: "prod", Match: inventory.NotifyMatch{Tags: []string{"prod"}}},
		{Name: "orders", Match: inventory.NotifyMatch{Secrets: []secret.ID{"prod/orders-db/app"}}},
		{Name: "payments", Events: []string{inventory.EventRotationFailed, inventory.EventIncidentStarted}, Match: inventory.NotifyMatch{Owners: []string{"payments"}}},
	}})
	for name, tc := range map[string]struct {
		e    Event
		want []string
	}{
		"failure of an orders secret": {Event{Type: RotationFailed, SecretID: "prod/orders-db/app", Tags: []string{"prod"}}, []string{"all", "failures", "prod", "orders"}},
		"failure owned by payments":   {Event{Type: RotationFailed, SecretID: "dev/x", Owner: "payments"}, []string{"all", "failures", "payments"}},
		"overdue dev secret":          {Event{Type: SecretOverdue, SecretID: "dev/x", Tags: []string{"dev"}}, []string{"all"}},
		"incident-wide event":         {Event{Type: IncidentStarted, IncidentID: "inc-1"}, []string{"all", "prod", "orders", "payments"}},
		"test event":                  {Sample(time.Now()), nil},
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, r := range router.Routes(tc.e) {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("routes %v, want %v", got, tc.want)
			}
		})
	}
}
