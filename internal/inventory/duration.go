package inventory

import (
	"strconv"
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// Day is the inventory's day: 24 hours (see yamlfields.Day).
const Day = yamlfields.Day

// ParseDuration reads a duration as the inventory writes it: Go's syntax (90s, 15m,
// 1h30m), optionally after a whole number of days, "30d" or "1d12h". The grammar is owned
// by yamlfields, so the agent's file reads durations the same way.
func ParseDuration(s string) (time.Duration, error) { return yamlfields.ParseDuration(s) }

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
