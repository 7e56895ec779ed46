// Package cronspec holds Keyturn's rules for a rotation's cron spec: which specs are
// accepted (five fields or a descriptor, no @every, no TZ= prefix, not both day fields,
// at least MinInterval apart, firing within five years), in which zone they are read, and
// their next activations. The inventory validates with it and the schedules package
// builds Temporal schedules with it, so both read a spec the same way.
package cronspec

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keyturn/keyturn/internal/yamlfields"

	"github.com/keyturn/keyturn/internal/durtext"
)

// MinInterval is the shortest allowed gap between two scheduled rotations.
const MinInterval = time.Hour

// DefaultTimezone is the zone a spec is read in when none is named.
const DefaultTimezone = "UTC"

// scheduleParser reads standard five-field specs and the @daily family. Seconds are left
// out on purpose: a six-field spec copied from another tool would otherwise be read with
// every field shifted by one.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// scheduleReference is the fixed instant the minimum-interval check starts from, so a
// schedule is accepted or rejected the same way whenever it is validated.
var scheduleReference = time.Date(2025, time.January, 6, 0, 0, 0, 0, time.UTC)

// cronStarBit is robfig/cron's marker for a field written as * or ?. The library ORs
// day-of-month and day-of-week exactly when neither field carries it.
const cronStarBit = 1 << 63

// Parse parses a cron spec read in timezone (an IANA name; empty means UTC) and
// applies Keyturn's rules for rotation schedules:
//   - five fields (minute hour day-of-month month day-of-week) or a descriptor such as
//     @daily, but not @every, whose activations drift with process restarts;
//   - no TZ= or CRON_TZ= prefix: the zone belongs in the timezone field;
//   - not both day-of-month and day-of-week restricted, because cron fires when either
//     matches, which is rarely what the author meant;
//   - no two activations closer than MinInterval;
//   - at least one activation in the next five years.
//
// The returned schedule computes its activations in timezone.
func Parse(spec, timezone string) (cron.Schedule, error) {
	loc, err := LoadZone(timezone)
	if err != nil {
		return nil, err
	}
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return nil, fmt.Errorf("schedule is empty; write a cron spec such as \"0 3 * * 1\" or remove the field")
	case strings.HasPrefix(spec, "@every"):
		return nil, fmt.Errorf("@every is not accepted: its activations shift whenever the scheduler restarts; use a fixed time such as @daily or \"0 3 * * *\"")
	case !yamlfields.IsDisplayable(spec):
		// The cron parser's errors repeat the field they failed on; refuse before it does.
		return nil, fmt.Errorf("holds control characters, escape sequences or invalid UTF-8; write a five-field cron spec such as \"0 3 * * 1\"")
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return nil, fmt.Errorf("a TZ= or CRON_TZ= prefix is not accepted; remove it and set the timezone field instead")
	}
	sched, err := parseCron(spec)
	if err != nil {
		return nil, fmt.Errorf("not a valid cron spec (%s); use five fields, minute hour day-of-month month day-of-week, e.g. \"0 3 * * 1\", or @hourly, @daily, @weekly, @monthly, @yearly", yamlfields.Displayable(err.Error(), yamlfields.MaxMessageRunes))
	}
	spec6, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unexpected schedule type %T; use a five-field cron spec", sched)
	}
	if spec6.Dom&cronStarBit == 0 && spec6.Dow&cronStarBit == 0 {
		return nil, fmt.Errorf("restricts both day-of-month and day-of-week, and cron fires when EITHER matches (\"0 3 1 * 1\" runs on the 1st and on every Monday); restrict only one and set the other to *")
	}
	// The parser puts every schedule in time.Local; the inventory's zone replaces it so
	// activations do not depend on the machine the worker runs on.
	spec6.Location = loc
	if err := checkInterval(spec6); err != nil {
		return nil, err
	}
	return spec6, nil
}

// parseCron calls the cron parser, turning a panic into an error: the parser indexes its
// input directly, and a malformed spec must not take the process down.
func parseCron(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cron parser failed: %v", r)
		}
	}()
	return scheduleParser.Parse(spec)
}

// checkInterval rejects a schedule that never fires or fires more often than
// MinInterval. Three activations are enough: within a day every active hour fires
// at the same minutes, so if any hour holds two activations, any three consecutive ones
// include two from the same hour.
func checkInterval(s cron.Schedule) error {
	const probes = 3
	prev := s.Next(scheduleReference)
	if prev.IsZero() {
		return fmt.Errorf("never fires (for example the 30th of February); check the day-of-month and month fields")
	}
	for i := 1; i < probes; i++ {
		next := s.Next(prev)
		if next.IsZero() {
			return nil
		}
		if gap := next.Sub(prev); gap < MinInterval {
			return fmt.Errorf("fires every %s at its closest; rotations must be at least %s apart, so fire at most once an hour (e.g. \"0 * * * *\" or @daily)", durtext.Short(gap), durtext.Short(MinInterval))
		}
		prev = next
	}
	return nil
}

// LoadZone loads an IANA zone; empty means UTC. "Local" is refused because it makes the
// schedule depend on the configuration of whichever machine runs the worker.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("\"Local\" depends on the machine the worker runs on; name a zone such as UTC or Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %s; use an IANA name such as UTC, Europe/Berlin or America/New_York", yamlfields.Quote(name))
	}
	return loc, nil
}

// Preview returns the next n activations of spec in tz after from, in tz. It
// applies the same rules as Parse, so a preview is only ever shown for a schedule
// the inventory would accept.
func Preview(spec, tz string, from time.Time, n int) ([]time.Time, error) {
	sched, err := Parse(spec, tz)
	if err != nil {
		return nil, fmt.Errorf("preview schedule: %w", err)
	}
	loc, _ := LoadZone(tz) // already loaded once by Parse
	out := make([]time.Time, 0, max(n, 0))
	t := from
	for len(out) < n {
		t = sched.Next(t)
		if t.IsZero() {
			break // no activation in the next five years: return what there is
		}
		out = append(out, t.In(loc))
	}
	return out, nil
}

// maxGapRuns bounds the walk of a frequent schedule: an hourly one has 8,784 runs in a
// leap year.
const maxGapRuns = 10_000

// LongestGap is the longest time between two runs of s. It walks the runs from a fixed
// reference instant, so the answer never depends on when it is asked, for five years or
// maxGapRuns runs, whichever ends first: every pattern of months, weekdays, leap years and
// DST changes repeats within that (an hourly schedule reaches 14 months). The gap to the first run past five years counts too, so a
// leap-day schedule gets its four years.
func LongestGap(s cron.Schedule) (time.Duration, bool) {
	limit := scheduleReference.AddDate(5, 0, 0)
	var longest time.Duration
	gaps := 0
	for t := s.Next(scheduleReference); !t.IsZero() && !t.After(limit) && gaps < maxGapRuns; gaps++ {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(t))
		t = next
	}
	return longest, longest > 0
}
