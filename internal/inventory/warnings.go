package inventory

import (
	"fmt"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
)

// Warnings returns what in a valid inventory (after ApplyDefaults and Validate) works as
// written but likely not as meant, in file order, each with SeverityWarning. They never
// make the inventory invalid: Load returns it all the same, and callers print them.
//
// Today there are two: a grace period shorter than the slowest consumer's refresh plus
// GraceMargin, which revokes the old credential while that consumer may still hold it;
// and a revoke gate that ends before its target's reporting delay has passed, so that no
// idle answer can ever count (see gateDelayWarning).
func (inv *Inventory) Warnings() []Problem {
	r := &report{File: inv.Path}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		inv.gateDelayWarning(r, i, s)
		slowest, ok := s.SlowestConsumer()
		if !ok || slowest.Refresh <= 0 {
			continue
		}
		need := MinGraceFor(slowest.Refresh)
		if s.Grace >= need {
			continue
		}
		idx := 0
		for j, c := range s.Consumers {
			if c.Name == slowest.Name && c.Line == slowest.Line {
				idx = j
				break
			}
		}
		from := ""
		if !s.pos.has("grace") {
			from = fmt.Sprintf(" (from the defaults block, line %d)", inv.pos.line("defaults.grace"))
			if !inv.pos.has("defaults.grace") {
				from = " (Keyturn's default)"
			}
		}
		// The name is checked by Validate; it is cleaned again so Warnings is safe to call
		// on any inventory.
		name := displayable(slowest.Name, maxValueRunes)
		fix := fmt.Sprintf("raise grace to at least %s or make %s refresh at least every %s", durtext.Day(need), name, durtext.Day(maxRefreshFor(s.Grace)))
		if maxRefreshFor(s.Grace) <= 0 {
			fix = fmt.Sprintf("raise grace to at least %s (a grace under %s leaves no consumer time to refresh)", durtext.Day(need), durtext.Day(MinGraceMargin))
		}
		field := fmt.Sprintf("consumers[%d].refresh", idx)
		r.Add(s.line(field), fmt.Sprintf("secrets[%d].%s", i, field),
			"secret %s: grace %s%s is shorter than consumer %s's refresh %s plus a margin of %s, so the old credential may be revoked before %s has read the new one; %s",
			s.ID, durtext.Day(s.Grace), from, name, durtext.Day(slowest.Refresh), durtext.Day(GraceMargin(slowest.Refresh)), name, fix)
	}
	out := Errors(r.Problems).sorted()
	for i := range out {
		out[i].Severity = SeverityWarning
	}
	return out
}

// maxRefreshFor is the longest refresh a grace period covers with its margin: the
// inverse of MinGraceFor, rounded down to the second.
func maxRefreshFor(grace time.Duration) time.Duration {
	// refresh + max(refresh/4, floor) <= grace: with the share, refresh <= grace/1.25;
	// with the floor, refresh <= grace - floor. Both must hold.
	r := min(time.Duration(float64(grace)/(1+GraceMarginShare)), grace-MinGraceMargin)
	return max(r.Truncate(time.Second), 0)
}
