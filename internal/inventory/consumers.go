package inventory

import (
	"fmt"
	"regexp"
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// Sensitivity levels: how much harm a leak of the secret does. They say how a secret
// should be treated (who is told, how fast an incident must move); they change nothing
// in how it is rotated.
const (
	SensitivityLow      = "low"
	SensitivityMedium   = "medium"
	SensitivityHigh     = "high"
	SensitivityCritical = "critical"
)

// sensitivities are the allowed levels, least to most sensitive, as messages list them.
var sensitivities = []string{SensitivityLow, SensitivityMedium, SensitivityHigh, SensitivityCritical}

// Consumer is an application that reads a secret from its store. Keyturn does not talk to
// consumers; it uses what the inventory says of them to check that the grace period
// leaves each one time to read the new version before the old one is revoked.
type Consumer struct {
	// Name identifies the consumer within its secret (orders-api, billing-worker).
	Name string
	// Refresh is the longest a consumer goes without re-reading the secret: its cache TTL
	// or re-read interval. A consumer that reads once at start has no refresh to write
	// here; it breaks at the revoke whatever the grace.
	Refresh time.Duration
	// Line is where the consumer starts in the file, 0 when unknown.
	Line int
}

// consumerFields are the fields of one consumer, in the order they are documented.
var consumerFields = []string{"name", "refresh"}

// consumerNamePattern is what a consumer name looks like: a service or job name, safe in
// a label and on a terminal.
var consumerNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Grace margin over the slowest consumer's refresh: the grace period must cover a full
// refresh, and then the time the consumer takes to read the store, open new connections
// and drain the old ones, which grows with the refresh (a consumer that re-reads hourly is
// usually a batch job with long connections) but is never nothing (a store round trip and
// a connection handshake, retried once, take seconds). Hence the larger of a share of the
// refresh and a fixed floor.
const (
	// GraceMarginShare is the share of the refresh added to it: 25%.
	GraceMarginShare = 0.25
	// MinGraceMargin is the margin's floor.
	MinGraceMargin = 30 * time.Second
)

// GraceMargin is the time the grace period should leave after a consumer's refresh: the
// larger of GraceMarginShare of it and MinGraceMargin.
func GraceMargin(refresh time.Duration) time.Duration {
	return max(time.Duration(float64(refresh)*GraceMarginShare), MinGraceMargin)
}

// MinGraceFor is the shortest grace period that lets a consumer with this refresh move to
// the new version before the old one is revoked: the refresh plus GraceMargin.
func MinGraceFor(refresh time.Duration) time.Duration {
	return refresh + GraceMargin(refresh)
}

// SlowestConsumer returns the consumer with the longest refresh, the first of those tied;
// false when the secret lists none.
func (s *Secret) SlowestConsumer() (Consumer, bool) {
	var slowest Consumer
	found := false
	for _, c := range s.Consumers {
		if !found || c.Refresh > slowest.Refresh {
			slowest, found = c, true
		}
	}
	return slowest, found
}

// consumers decodes the consumers list of a secret block into s.
func (d *decoder) consumers(b block, s *Secret) {
	i := 0
	d.mappings(b, "consumers", "a list of consumers, each starting with '- name: ...'", consumerFields, func(line int, cb *block) {
		c := Consumer{Line: line}
		item := fmt.Sprintf("consumers[%d]", i)
		s.pos[item] = line // a missing field is reported where its consumer starts
		if cb != nil {
			cb.Pos, cb.Rel = s.pos, item
			cb.Str("name", &c.Name)
			cb.Duration("refresh", &c.Refresh)
		}
		s.Consumers = append(s.Consumers, c)
		i++
	})
}

// sensitivityProblem says what is wrong with a sensitivity, or "".
func sensitivityProblem(v string) string {
	if yamlfields.Contains(sensitivities, v) {
		return ""
	}
	return fmt.Sprintf("%s is not a sensitivity; allowed: %s", quoteValue(v), yamlfields.QuoteList(sensitivities))
}

// validateConsumers checks the secret's sensitivity (when it wrote one; the defaults
// block's is checked there) and each consumer on its own. How the grace period compares
// with their refresh is a warning, not a problem: see Inventory.Warnings.
func (c *secretCheck) validateConsumers() {
	s := c.s
	if s.pos.has("sensitivity") {
		if msg := sensitivityProblem(s.Sensitivity); msg != "" {
			c.add("sensitivity", "%s", msg)
		}
	}
	first := map[string]int{}
	for i, con := range s.Consumers {
		item := fmt.Sprintf("consumers[%d]", i)
		switch {
		case con.Name == "":
			c.add(item+".name", "required; name the application that reads this secret, e.g. orders-api")
		case !consumerNamePattern.MatchString(con.Name):
			c.add(item+".name", "%s is not a valid consumer name; use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64 characters, e.g. orders-api", quoteValue(con.Name))
		default:
			if j, dup := first[con.Name]; dup {
				c.add(item+".name", "consumer %s is listed twice (first at line %d); list each consumer once", quoteValue(con.Name), s.Consumers[j].Line)
			} else {
				first[con.Name] = i
			}
		}
		switch {
		case !s.pos.has(item + ".refresh"):
			c.add(item+".refresh", "required; how often %s re-reads the secret (its cache TTL), e.g. 5m", consumerLabel(con))
		case con.Refresh <= 0:
			c.add(item+".refresh", "must be a positive duration such as 30s, 5m or 1h: how often the consumer re-reads the secret")
		}
	}
}

// consumerLabel names a consumer in a message: its name, or "the consumer" without one.
func consumerLabel(con Consumer) string {
	if con.Name == "" || !consumerNamePattern.MatchString(con.Name) {
		return "the consumer"
	}
	return con.Name
}
