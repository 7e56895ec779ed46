package inventory

import "github.com/keyturn/keyturn/secret"

// Event types a notification route can subscribe to. The inventory names them, so this
// file owns the words; package notify gives them its Type and builds the events.
const (
	// EventRotationFailed: a rotation ended failed, the old credential still in use.
	EventRotationFailed = "rotation_failed"
	// EventRotationRolledBack: a rotation was undone (a failed test or promote, an abort).
	EventRotationRolledBack = "rotation_rolled_back"
	// EventRevokeOutstanding: the old credential could not be revoked yet and still works.
	EventRevokeOutstanding = "revoke_outstanding"
	// EventRevokeHeld: the revoke gate waited max_wait and holds the revoke of the old
	// credential, which is still in use; the event names the uses.
	EventRevokeHeld = "revoke_held"
	// EventRevokeReleased: a held revoke proceeds (the old credential went idle, or an
	// operator sent revoke-now).
	EventRevokeReleased = "revoke_released"
	// EventSecretOverdue: a secret is older than its rotation policy allows.
	EventSecretOverdue = "secret_overdue"
	// EventIncidentStarted, EventIncidentContained and EventIncidentFinished follow an
	// incident playbook.
	EventIncidentStarted   = "incident_started"
	EventIncidentContained = "incident_contained"
	EventIncidentFinished  = "incident_finished"
)

// Body formats of a notification route.
const (
	// NotifyFormatJSON posts the event as a generic JSON object, signed.
	NotifyFormatJSON = "json"
	// NotifyFormatSlack posts a Slack-compatible {"text": ..., "blocks": [...]} body, the
	// shape Slack incoming webhooks (and Mattermost, Rocket.Chat) accept.
	NotifyFormatSlack = "slack"
)

// DefaultNotifyFormat is the format of a route that names none.
const DefaultNotifyFormat = NotifyFormatJSON

var (
	// NotifyEvents lists every event type a route may name, in documentation order.
	NotifyEvents = []string{EventRotationFailed, EventRotationRolledBack, EventRevokeOutstanding, EventRevokeHeld, EventRevokeReleased, EventSecretOverdue, EventIncidentStarted, EventIncidentContained, EventIncidentFinished}

	notifyFormats       = []string{NotifyFormatJSON, NotifyFormatSlack}
	notificationsFields = []string{"routes"}
	routeFields         = []string{"name", "url", "format", "signing_key", "events", "match"}
	matchFields         = []string{"tags", "secrets", "owners"}
)

// Notifications is the inventory's notifications block: where events go.
type Notifications struct {
	// Routes in file order. An event goes to every route that selects it.
	Routes []NotifyRoute
}

// NotifyRoute sends the events it selects to one webhook.
type NotifyRoute struct {
	// Name identifies the route in output and in `keyturn notify test --route`.
	Name string
	// URL is a reference to the webhook URL, never the URL itself: a Slack incoming
	// webhook URL is a credential (anyone holding it can post), and so are many others.
	URL Ref
	// Format is one of the NotifyFormat constants.
	Format string
	// SigningKey is a reference to the HMAC-SHA256 key the body is signed with. Required
	// for the json format; optional for slack, whose receiver checks no signature.
	SigningKey Ref
	// Events are the event types the route receives; empty means all of them.
	Events []string
	// Match narrows the route to some secrets; empty means every secret.
	Match NotifyMatch
	// Line is where the route starts in the file, 0 when unknown.
	Line int

	// pos maps a field path relative to the route ("match.tags[0]") to its line.
	pos positions
}

// NotifyMatch selects the secrets a route hears about. A secret matches when any list
// names it: its ID is in Secrets, one of its tags is in Tags, or its owner is in Owners.
// Events that are not about one secret (an incident's) are selected by type alone.
type NotifyMatch struct {
	Tags    []string
	Secrets []secret.ID
	Owners  []string
}

// Empty reports whether the match selects every secret.
func (m NotifyMatch) Empty() bool {
	return len(m.Tags) == 0 && len(m.Secrets) == 0 && len(m.Owners) == 0
}

// Route returns the route called name.
func (n Notifications) Route(name string) (NotifyRoute, bool) {
	for _, r := range n.Routes {
		if r.Name == name {
			return r, true
		}
	}
	return NotifyRoute{}, false
}

// notifications decodes the notifications block into inv.
func (d *decoder) notifications(top block, inv *Inventory) {
	nb, ok := top.Sub("notifications", notificationsFields)
	if !ok {
		return
	}
	d.mappings(nb, "routes", "a list of routes, each starting with '- name: ...'", routeFields, func(line int, b *block) {
		r := NotifyRoute{Line: line, pos: positions{}}
		if b != nil {
			b.Pos = r.pos
			d.route(*b, &r)
		}
		inv.Notifications.Routes = append(inv.Notifications.Routes, r)
	})
}

// route decodes the fields of one route.
func (d *decoder) route(b block, r *NotifyRoute) {
	var url, key string
	b.Str("name", &r.Name)
	b.Str("url", &url)
	b.Str("format", &r.Format)
	b.Str("signing_key", &key)
	r.URL, r.SigningKey = Ref(url), Ref(key)
	b.StrList("events", &r.Events)
	if mb, ok := b.Sub("match", matchFields); ok {
		var ids []string
		mb.StrList("tags", &r.Match.Tags)
		mb.StrList("secrets", &ids)
		mb.StrList("owners", &r.Match.Owners)
		for _, id := range ids {
			r.Match.Secrets = append(r.Match.Secrets, secret.ID(id))
		}
	}
}

// applyDefaults gives a route without a format the default one.
func (n *Notifications) applyDefaults() {
	for i := range n.Routes {
		r := &n.Routes[i]
		if r.pos == nil {
			r.pos = positions{}
		}
		if r.Format == "" && !r.pos.has("format") {
			r.Format = DefaultNotifyFormat
		}
	}
}
