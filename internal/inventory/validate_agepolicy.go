package inventory

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/durtext"
)

// maxOwnerRunes bounds an owner name: it is a label on every age metric of the secret.
const maxOwnerRunes = 64

// ownerProblem says what is wrong with an owner name, or "". A secret's owner and a
// route's match.owners follow this one rule, so every owner a secret can have is one a
// route can name.
func ownerProblem(o string) string {
	if strings.TrimSpace(o) == "" || strings.ContainsAny(o, " \t") || !isDisplayable(o) || utf8.RuneCountInString(o) > maxOwnerRunes {
		return fmt.Sprintf("%s is not a valid owner; use a team or person name without spaces, at most %d characters, e.g. payments or alice@example.com", quoteValue(o), maxOwnerRunes)
	}
	return ""
}

// maxAgeProblem says what is wrong with a max_age on its own, or "".
func maxAgeProblem(m time.Duration) string {
	switch {
	case m <= 0:
		return "must be a positive duration such as 30d or 90d; remove it to derive the maximum age from the schedule or the certificate's lifetime"
	case m < MinMaxAge:
		return fmt.Sprintf("must be at least %s: rotations are at least that far apart, so the secret would be overdue between any two; use e.g. 30d", durtext.Day(MinMaxAge))
	}
	return ""
}

// validateMaxAge checks the secret's max_age on its own (when the file wrote it on the
// secret; the defaults block's is checked there) and against what it governs: a maximum
// age shorter than the time between scheduled runs makes the secret overdue before each
// run, and one longer than a certificate's lifetime lets it expire before it is overdue.
func (c *secretCheck) validateMaxAge() {
	s := c.s
	own := s.pos.has("max_age")
	if own {
		if msg := maxAgeProblem(s.MaxAge); msg != "" {
			c.add("max_age", "%s", msg)
			return
		}
	}
	if s.MaxAge <= 0 || (!own && maxAgeProblem(s.MaxAge) != "") {
		return
	}
	// Where a conflict is reported: on the secret's max_age, or, when it inherits the
	// defaults block's, on the field it conflicts with, naming the defaults line.
	which := fmt.Sprintf("max_age %s", durtext.Day(s.MaxAge))
	if !own {
		which = fmt.Sprintf("max_age %s (from the defaults block, line %d)", durtext.Day(s.MaxAge), c.inv.pos.line("defaults.max_age"))
	}
	if gap, ok := s.scheduleGap(); ok && s.MaxAge < gap+s.Window {
		field := "max_age"
		if !own {
			field = "schedule"
		}
		between := durtext.Day(gap) + " between two scheduled runs"
		if s.Window > 0 {
			between += " plus the " + durtext.Day(s.Window) + " window"
		}
		c.add(field, "%s is shorter than the %s, so the secret would be overdue before every run; set max_age on this secret to at least %s, or remove it to derive %s from the schedule",
			which, between, durtext.Day(gap+s.Window), durtext.Day(2*gap+s.Window))
	}
	if cert := s.certificate(); cert != nil && cert.TTL > 0 && s.MaxAge > cert.TTL {
		field := "max_age"
		if !own {
			field = s.Kind + ".ttl"
		}
		c.add(field, "%s is longer than the certificate's ttl %s, so it would expire before it counts as overdue; set max_age on this secret to at most %s, or remove it to derive one from the lifetime",
			which, durtext.Day(cert.TTL), durtext.Day(cert.TTL))
	}
}
