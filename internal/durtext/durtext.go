// Package durtext writes durations for people, in the forms Keyturn prints everywhere:
// Short (168h, not 168h0m0s), Day (14d30m, which the inventory's and the agent's duration
// grammar reads back) and Rough (3d4h, for ages).
package durtext

import (
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// day is the files' day, 24 hours (yamlfields owns the grammar).
const day = yamlfields.Day

// Short formats d without trailing zero units: 168h instead of 168h0m0s. Every
// place that shows a duration to a person (problems, schedules, status) uses it.
func Short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Day formats d exactly, in the grammar yamlfields.ParseDuration reads back: whole days as
// "d", the rest as Short does (14d, 14d30m, 6h, 45s).
func Day(d time.Duration) string {
	if d < 0 {
		return "-" + Day(-d)
	}
	if d < day {
		return Short(d)
	}
	s := strconv.FormatInt(int64(d/day), 10) + "d"
	if rest := d % day; rest > 0 {
		s += Short(rest)
	}
	return s
}

// Rough formats d in its two largest units, truncated (3d4h, 4h12m, 12m30s,
// 45s): for ages, where the seconds of a month-old credential are noise. The value is
// never rounded up, so "3d4h" means at least that long.
func Rough(d time.Duration) string {
	if d < 0 {
		return "-" + Rough(-d)
	}
	units := []struct {
		size time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
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
