package schedules

import (
	"fmt"

	"github.com/robfig/cron/v3"
	schedulepb "go.temporal.io/api/schedule/v1"
)

// cronStarBit is robfig/cron's marker for a field written as * or ?; it is not a value.
const cronStarBit = 1 << 63

// calendarOf translates a parsed five-field spec into Temporal's structured calendar,
// field by field from the parser's bit sets. Temporal then matches exactly the values
// robfig/cron matched, whatever each library's text dialect: robfig accepts ? where
// Temporal does not, and Temporal reads 7 as Sunday where robfig refuses it. The one
// semantic difference, cron's OR of a restricted day-of-month and day-of-week (Temporal
// always ANDs), cannot arise because cronspec.Parse refuses specs that restrict both.
func calendarOf(comment string, s *cron.SpecSchedule) *schedulepb.StructuredCalendarSpec {
	return &schedulepb.StructuredCalendarSpec{
		Second:     rangesOf(s.Second, 0, 59),
		Minute:     rangesOf(s.Minute, 0, 59),
		Hour:       rangesOf(s.Hour, 0, 23),
		DayOfMonth: rangesOf(s.Dom, 1, 31),
		Month:      rangesOf(s.Month, 1, 12),
		DayOfWeek:  rangesOf(s.Dow, 0, 6),
		Comment:    comment,
	}
}

// rangesOf turns the values set in bits, between lo and hi, into as few ranges as it
// simply can: runs of consecutive values become one range, and values evenly spaced (as
// */15 writes them) become one stepped range, which keeps the calendar readable in the
// Web UI.
func rangesOf(bits uint64, lo, hi int) []*schedulepb.Range {
	bits &^= cronStarBit
	var values []int
	for v := lo; v <= hi; v++ {
		if bits&(1<<uint(v)) != 0 {
			values = append(values, v)
		}
	}
	if r, ok := steppedRange(values); ok {
		return []*schedulepb.Range{r}
	}
	var out []*schedulepb.Range
	for i := 0; i < len(values); {
		j := i
		for j+1 < len(values) && values[j+1] == values[j]+1 {
			j++
		}
		out = append(out, &schedulepb.Range{Start: int32(values[i]), End: int32(values[j])})
		i = j + 1
	}
	return out
}

// steppedRange returns one range with a step > 1 when values are three or more evenly
// spaced numbers.
func steppedRange(values []int) (*schedulepb.Range, bool) {
	if len(values) < 3 {
		return nil, false
	}
	step := values[1] - values[0]
	if step < 2 {
		return nil, false
	}
	for i := 2; i < len(values); i++ {
		if values[i]-values[i-1] != step {
			return nil, false
		}
	}
	return &schedulepb.Range{Start: int32(values[0]), End: int32(values[len(values)-1]), Step: int32(step)}, true
}

// calendarBits is a structured calendar reduced to the values it matches, so two
// calendars written differently (Temporal normalises ranges when it stores them) compare
// equal when they fire at the same times.
type calendarBits struct {
	second, minute, hour, dayOfMonth, month, dayOfWeek uint64
	// years lists the year values; empty means every year.
	years string
}

// bitsOf reduces a calendar as Temporal reads it: a range's end below its start means
// the start alone, a step of 0 means 1, and day-of-week 7 is Sunday.
func bitsOf(c *schedulepb.StructuredCalendarSpec) calendarBits {
	b := calendarBits{
		second:     maskOf(c.GetSecond()),
		minute:     maskOf(c.GetMinute()),
		hour:       maskOf(c.GetHour()),
		dayOfMonth: maskOf(c.GetDayOfMonth()),
		month:      maskOf(c.GetMonth()),
		dayOfWeek:  maskOf(c.GetDayOfWeek()),
	}
	if b.dayOfWeek&(1<<7) != 0 {
		b.dayOfWeek = b.dayOfWeek&^(1<<7) | 1
	}
	for _, r := range c.GetYear() {
		b.years += fmt.Sprintf("%d-%d/%d,", r.GetStart(), max(r.GetEnd(), r.GetStart()), max(r.GetStep(), 1))
	}
	return b
}

func maskOf(ranges []*schedulepb.Range) uint64 {
	var m uint64
	for _, r := range ranges {
		start, end, step := int(r.GetStart()), int(r.GetEnd()), int(r.GetStep())
		if step <= 0 {
			step = 1
		}
		if end < start {
			end = start
		}
		for v := start; v <= end && v < 64; v += step {
			if v >= 0 {
				m |= 1 << uint(v)
			}
		}
	}
	return m
}

// sameSpec reports whether a schedule spec Temporal holds fires at the same times as the
// desired one: the same calendars (by the values they match), the same intervals, and
// nothing else (no excluded times, no start or end, no text forms left unconverted).
func sameSpec(got, want *schedulepb.ScheduleSpec) bool {
	if len(got.GetCalendar()) > 0 || len(got.GetCronString()) > 0 || len(got.GetExcludeCalendar()) > 0 ||
		len(got.GetExcludeStructuredCalendar()) > 0 || got.GetStartTime() != nil || got.GetEndTime() != nil {
		return false
	}
	if len(got.GetStructuredCalendar()) != len(want.GetStructuredCalendar()) || len(got.GetInterval()) != len(want.GetInterval()) {
		return false
	}
	for i, c := range want.GetStructuredCalendar() {
		if bitsOf(got.GetStructuredCalendar()[i]) != bitsOf(c) {
			return false
		}
	}
	for i, iv := range want.GetInterval() {
		g := got.GetInterval()[i]
		if g.GetInterval().AsDuration() != iv.GetInterval().AsDuration() || g.GetPhase().AsDuration() != iv.GetPhase().AsDuration() {
			return false
		}
	}
	return true
}
