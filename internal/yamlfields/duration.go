package yamlfields

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day is a file's day: 24 hours, whatever the calendar or the clocks do. Ages and
// maximum ages are counted in days, and "2160h" for 90 days is an invitation to get the
// arithmetic wrong.
const Day = 24 * time.Hour

// maxDays keeps a number of days inside time.Duration (about 292 years).
const maxDays = 100_000

// ParseDuration reads a duration as the files write it: Go's syntax (90s, 15m, 1h30m),
// optionally after a whole number of days, "30d" or "1d12h". It is the one grammar of
// every duration field, in the inventory and in the agent's file.
func ParseDuration(s string) (time.Duration, error) {
	daysText, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		return time.ParseDuration(s)
	}
	neg := strings.HasPrefix(daysText, "-")
	days, err := strconv.Atoi(strings.TrimPrefix(daysText, "-"))
	if err != nil || days < 0 || days > maxDays || strings.HasPrefix(daysText, "+") || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
		return 0, fmt.Errorf("time: invalid duration %q", s)
	}
	d := time.Duration(days) * Day
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("time: invalid duration %q", s)
		}
		d += r
	}
	if neg {
		d = -d
	}
	return d, nil
}
