package inventory

import (
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// validateNotifications checks every route of the notifications block.
func (inv *Inventory) validateNotifications(r *report) {
	first := map[string]*NotifyRoute{}
	for i := range inv.Notifications.Routes {
		rt := &inv.Notifications.Routes[i]
		c := routeCheck{r: r, inv: inv, rt: rt, path: fmt.Sprintf("notifications.routes[%d]", i)}
		c.validate()
		if rt.Name == "" {
			continue
		}
		if prev, dup := first[rt.Name]; dup {
			c.add("name", "route name %s is already used at line %d; give every route its own name", quoteValue(rt.Name), prev.line("name"))
			continue
		}
		first[rt.Name] = rt
	}
}

// line returns the line of a field of the route, falling back to the route's start.
func (rt *NotifyRoute) line(field string) int {
	if l := rt.pos.line(field); l != 0 {
		return l
	}
	return rt.Line
}

// routeCheck validates one route.
type routeCheck struct {
	r    *report
	inv  *Inventory
	rt   *NotifyRoute
	path string
}

// add reports a problem with field, a path relative to the route.
func (c routeCheck) add(field, format string, args ...any) {
	c.r.Add(c.rt.line(field), yamlfields.Join(c.path, field), format, args...)
}

func (c routeCheck) validate() {
	rt := c.rt
	switch {
	case rt.Name == "":
		c.add("name", "required; name the route, e.g. name: security")
	case !tagPattern.MatchString(rt.Name):
		c.add("name", "%s is not a valid route name; use lower-case a-z, 0-9, '_', '.' and '-', starting with a letter or digit", quoteValue(rt.Name))
	}
	c.validateURL()
	if !yamlfields.Contains(notifyFormats, rt.Format) {
		c.add("format", "unknown format %s; use one of %s (default %q)", quoteValue(rt.Format), yamlfields.QuoteList(notifyFormats), DefaultNotifyFormat)
	}
	switch {
	case rt.SigningKey == "" && rt.Format == NotifyFormatJSON:
		c.add("signing_key", "required for format %q, so receivers can reject forged and replayed events; write a reference to the key: %s", NotifyFormatJSON, refForms)
	case rt.SigningKey != "":
		if err := rt.SigningKey.Validate(); err != nil {
			c.add("signing_key", "%v", err)
		}
	}
	c.validateEvents()
	c.validateMatch()
}

// validateURL requires a reference: a webhook URL written out would put a credential in
// the inventory, which is kept in Git.
func (c routeCheck) validateURL() {
	u := c.rt.URL
	switch {
	case u == "":
		c.add("url", "required; write a reference to where the webhook URL is kept, e.g. env:SECURITY_WEBHOOK_URL or file:notify/security#url")
	case strings.Contains(string(u), "://"):
		// The value is not repeated: it may be a Slack webhook URL, itself a secret.
		c.add("url", "is written out (value hidden); webhook URLs are credentials (anyone holding a Slack webhook URL can post), so keep it elsewhere and write a reference: env:SECURITY_WEBHOOK_URL or file:notify/security#url")
	default:
		if err := u.Validate(); err != nil {
			c.add("url", "%v", err)
		}
	}
}

func (c routeCheck) validateEvents() {
	seen := map[string]bool{}
	for i, ev := range c.rt.Events {
		field := fmt.Sprintf("events[%d]", i)
		switch {
		case seen[ev]:
			c.add(field, "event %s is listed twice; remove one", quoteValue(ev))
		case !yamlfields.Contains(NotifyEvents, ev):
			hint := ""
			if near := yamlfields.Closest(ev, NotifyEvents); near != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", near)
			}
			c.add(field, "unknown event %s%s; known events: %s", quoteValue(ev), hint, yamlfields.QuoteList(NotifyEvents))
		}
		seen[ev] = true
	}
}

func (c routeCheck) validateMatch() {
	m := c.rt.Match
	checkTags(c.r, yamlfields.Join(c.path, "match.tags"), m.Tags, nil, func(f string) int { return c.rt.line(yamlfields.Join("match", f)) })
	for i, id := range m.Secrets {
		field := fmt.Sprintf("match.secrets[%d]", i)
		if id.Validate() != nil {
			c.add(field, "%s is not a valid secret id; use %s", quoteValue(string(id)), pathLikeHint)
			continue
		}
		if _, ok := c.inv.Lookup(id); !ok {
			c.add(field, "secret %s is not in this inventory, so the route would never hear about it; check the id", quoteValue(string(id)))
		}
	}
	for i, o := range m.Owners {
		if msg := ownerProblem(o); msg != "" {
			c.add(fmt.Sprintf("match.owners[%d]", i), "%s", msg)
		}
	}
}
