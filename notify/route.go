package notify

import (
	"slices"

	"github.com/keyturn/keyturn/internal/inventory"
)

// Router picks the inventory's routes for an event.
type Router struct {
	routes []inventory.NotifyRoute
}

// NewRouter builds a router over a validated notifications block.
func NewRouter(n inventory.Notifications) *Router {
	return &Router{routes: n.Routes}
}

// Routes returns every route that selects e, in file order. A route selects an event
// when it lists the event's type (or lists none) and, for an event about one secret, its
// match is empty or names the secret, one of its tags or its owner. An incident-wide
// event has no secret to match, so it goes to every route that takes its type. The test
// event is never routed: `keyturn notify test` sends it to each route on purpose.
func (r *Router) Routes(e Event) []inventory.NotifyRoute {
	if e.Type == Test {
		return nil
	}
	var out []inventory.NotifyRoute
	for _, rt := range r.routes {
		if len(rt.Events) > 0 && !slices.Contains(rt.Events, string(e.Type)) {
			continue
		}
		if e.SecretID != "" && !matches(rt.Match, e) {
			continue
		}
		out = append(out, rt)
	}
	return out
}

// matches reports whether m selects the secret e is about.
func matches(m inventory.NotifyMatch, e Event) bool {
	if m.Empty() || slices.Contains(m.Secrets, e.SecretID) {
		return true
	}
	for _, t := range e.Tags {
		if slices.Contains(m.Tags, t) {
			return true
		}
	}
	return e.Owner != "" && slices.Contains(m.Owners, e.Owner)
}
