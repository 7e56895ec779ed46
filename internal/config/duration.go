package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day is the inventory's day: 24 hours, whatever the calendar or the clocks do. Ages and
// maximum ages are counted in days, and "2160h" for 90 days is an invitation to get the
// arithmetic wrong.
const Day = 24 * time.Hour

// maxDays keeps a number of days inside time.Duration (about 292 years).
const maxDays = 100_000

// ParseDuration reads a duration as the inventory writes it: Go's syntax (90s, 15m,
// 1h30m), optionally after a whole number of days, "30d" or "1d12h". It is the one
// grammar of every duration field in the file.
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

// DayDuration formats d exactly, in the grammar ParseDuration reads: whole days as "d",
// the rest as ShortDuration does (14d, 14d30m, 6h, 45s).
func DayDuration(d time.Duration) string {
	if d < 0 {
		return "-" + DayDuration(-d)
	}
	if d < Day {
		return ShortDuration(d)
	}
	s := strconv.FormatInt(int64(d/Day), 10) + "d"
	if rest := d % Day; rest > 0 {
		s += ShortDuration(rest)
	}
	return s
}

// RoughDuration formats d in its two largest units, truncated (3d4h, 4h12m, 12m30s,
// 45s): for ages, where the seconds of a month-old credential are noise. The value is
// never rounded up, so "3d4h" means at least that long.
func RoughDuration(d time.Duration) string {
	if d < 0 {
		return "-" + RoughDuration(-d)
	}
	units := []struct {
		size time.Duration
		name string
	}{{Day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for i, u := range units {
		if d < u.size && i < len(units)-1 {
			continue
		}
		s := strconv.FormatInt(int64(d/u.size), 10) + u.name
		if i+1 < len(units) {
			next := units[i+1]
			if n := (d % u.size) / next.size; n > 0 {
				s += strconv.FormatInt(int64(n), 10) + next.name
			}
		}
		return s
	}
	return "0s"
}
