package schedules

import (
	"testing"

	"github.com/robfig/cron/v3"
	schedulepb "go.temporal.io/api/schedule/v1"

	"github.com/keyturn/keyturn/schedules/cronspec"
)

// parse reads a spec as the inventory does.
func parse(t *testing.T, spec string) *cron.SpecSchedule {
	t.Helper()
	s, err := cronspec.Parse(spec, "UTC")
	if err != nil {
		t.Fatalf("parse %q: %v", spec, err)
	}
	return s.(*cron.SpecSchedule)
}

// rangeText renders ranges compactly for comparison: "3", "1-5", "0-45/15".
func rangeText(rs []*schedulepb.Range) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		switch {
		case r.GetStep() > 1:
			out += itoa(r.GetStart()) + "-" + itoa(r.GetEnd()) + "/" + itoa(r.GetStep())
		case r.GetEnd() > r.GetStart():
			out += itoa(r.GetStart()) + "-" + itoa(r.GetEnd())
		default:
			out += itoa(r.GetStart())
		}
	}
	return out
}

func itoa(v int32) string {
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func TestCalendarOf(t *testing.T) {
	for spec, want := range map[string][6]string{
		// second, minute, hour, day of month, month, day of week
		"0 3 * * 1":         {"0", "0", "3", "1-31", "1-12", "1"},
		"@weekly":           {"0", "0", "0", "1-31", "1-12", "0"},
		"@daily":            {"0", "0", "0", "1-31", "1-12", "0-6"},
		"@monthly":          {"0", "0", "0", "1", "1-12", "0-6"},
		"@yearly":           {"0", "0", "0", "1", "1", "0-6"},
		"30 */6 * * *":      {"0", "30", "0-18/6", "1-31", "1-12", "0-6"},
		"15 4 * * MON-FRI":  {"0", "15", "4", "1-31", "1-12", "1-5"},
		"0 2 1,15 * ?":      {"0", "0", "2", "1,15", "1-12", "0-6"},
		"0 9 * JAN,JUL SUN": {"0", "0", "9", "1-31", "1,7", "0"},
		"5 1-3,22 * * *":    {"0", "5", "1-3,22", "1-31", "1-12", "0-6"},
	} {
		t.Run(spec, func(t *testing.T) {
			c := calendarOf(spec, parse(t, spec))
			got := [6]string{rangeText(c.Second), rangeText(c.Minute), rangeText(c.Hour), rangeText(c.DayOfMonth), rangeText(c.Month), rangeText(c.DayOfWeek)}
			if got != want {
				t.Errorf("calendar of %q = %v, want %v", spec, got, want)
			}
			if c.Comment != spec {
				t.Errorf("comment %q, want the spec as written", c.Comment)
			}
		})
	}
}

// Temporal stores ranges in its own normal form (end equal to start, step 1, Sunday as
// 7); they must compare equal to what Keyturn sent.
func TestSameSpecIgnoresHowRangesAreWritten(t *testing.T) {
	want := &schedulepb.ScheduleSpec{StructuredCalendar: []*schedulepb.StructuredCalendarSpec{calendarOf("0 3 * * 0", parse(t, "0 3 * * 0"))}}
	normalised := &schedulepb.ScheduleSpec{StructuredCalendar: []*schedulepb.StructuredCalendarSpec{{
		Second:     []*schedulepb.Range{{Step: 1}},
		Minute:     []*schedulepb.Range{{Start: 0, End: 0, Step: 1}},
		Hour:       []*schedulepb.Range{{Start: 3, End: 3, Step: 1}},
		DayOfMonth: []*schedulepb.Range{{Start: 1, End: 31, Step: 1}},
		Month:      []*schedulepb.Range{{Start: 1, End: 6}, {Start: 7, End: 12}},
		DayOfWeek:  []*schedulepb.Range{{Start: 7}},
	}}}
	if !sameSpec(normalised, want) {
		t.Fatal("a normalised copy of the calendar must compare equal")
	}
	moved := &schedulepb.ScheduleSpec{StructuredCalendar: []*schedulepb.StructuredCalendarSpec{calendarOf("0 4 * * 0", parse(t, "0 4 * * 0"))}}
	if sameSpec(moved, want) {
		t.Fatal("a calendar at another hour must not compare equal")
	}
	withCron := &schedulepb.ScheduleSpec{StructuredCalendar: want.StructuredCalendar, CronString: []string{"0 5 * * *"}}
	if sameSpec(withCron, want) {
		t.Fatal("an extra cron string must not compare equal")
	}
}
