package cronspec

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		spec, tz string
		wantErr  string // substring; empty means valid
	}{
		"weekly at three":        {spec: "0 3 * * 1"},
		"daily descriptor":       {spec: "@daily"},
		"hourly is the minimum":  {spec: "@hourly"},
		"every two hours":        {spec: "15 */2 * * *", tz: "Europe/Berlin"},
		"day of month only":      {spec: "0 4 1,15 * *"},
		"question mark dom":      {spec: "0 4 ? * MON"},
		"star step dom":          {spec: "0 4 */1 * 1"},
		"surrounding spaces":     {spec: "  0 3 * * 1  "},
		"empty":                  {spec: "", wantErr: "schedule is empty"},
		"every":                  {spec: "@every 2h", wantErr: "@every is not accepted"},
		"tz prefix":              {spec: "TZ=UTC 0 3 * * *", wantErr: "TZ= or CRON_TZ= prefix"},
		"tz prefix without spec": {spec: "CRON_TZ=UTC", wantErr: "TZ= or CRON_TZ= prefix"},
		"hour out of range":      {spec: "0 24 * * *", wantErr: "not a valid cron spec"},
		"six fields":             {spec: "0 0 3 * * 1", wantErr: "not a valid cron spec"},
		"unknown descriptor":     {spec: "@fortnightly", wantErr: "not a valid cron spec"},
		"dom and dow":            {spec: "0 3 1 * 1", wantErr: "restricts both day-of-month and day-of-week"},
		"dom range and dow":      {spec: "0 3 1-31 * MON-FRI", wantErr: "restricts both"},
		"every five minutes":     {spec: "*/5 * * * *", wantErr: "fires every 5m at its closest; rotations must be at least 1h apart"},
		"twice in one hour":      {spec: "0,30 3 * * *", wantErr: "fires every 30m"},
		"every minute of a day":  {spec: "* 3 1 1 *", wantErr: "fires every 1m"},
		"never":                  {spec: "0 0 30 2 *", wantErr: "never fires"},
		"bad zone":               {spec: "0 3 * * *", tz: "Europe/Berlinn", wantErr: "unknown time zone"},
		"local zone":             {spec: "0 3 * * *", tz: "Local", wantErr: `"Local" depends on the machine`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sched, err := Parse(tc.spec, tc.tz)
			if tc.wantErr == "" {
				if err != nil || sched == nil {
					t.Fatalf("Parse(%q, %q) = %v, %v; want a schedule", tc.spec, tc.tz, sched, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q, %q) error = %v, want it to contain %q", tc.spec, tc.tz, err, tc.wantErr)
			}
		})
	}
}

func TestParseUsesTimezone(t *testing.T) {
	sched, err := Parse("0 3 * * *", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer, whatever the
	// machine's own zone.
	from := time.Date(2025, time.January, 10, 12, 0, 0, 0, time.UTC)
	if got, want := sched.Next(from).UTC(), time.Date(2025, time.January, 11, 2, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("winter: next = %v, want %v", got, want)
	}
	from = time.Date(2025, time.July, 10, 12, 0, 0, 0, time.UTC)
	if got, want := sched.Next(from).UTC(), time.Date(2025, time.July, 11, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("summer: next = %v, want %v", got, want)
	}
}

func TestPreview(t *testing.T) {
	from := time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		spec, tz string
		n        int
		first    time.Time
	}{
		"weekly in Berlin": {spec: "0 3 * * 1", tz: "Europe/Berlin", n: 5, first: time.Date(2025, time.March, 3, 2, 0, 0, 0, time.UTC)},
		"daily in UTC":     {spec: "@daily", n: 3, first: time.Date(2025, time.March, 2, 0, 0, 0, 0, time.UTC)},
		"hourly":           {spec: "@hourly", n: 48, first: time.Date(2025, time.March, 1, 1, 0, 0, 0, time.UTC)},
		"none asked":       {spec: "@daily", n: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Preview(tc.spec, tc.tz, from, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Fatalf("got %d times, want %d", len(got), tc.n)
			}
			if tc.n == 0 {
				return
			}
			if !got[0].Equal(tc.first) {
				t.Errorf("first = %v, want %v", got[0], tc.first)
			}
			wantZone := tc.tz
			if wantZone == "" {
				wantZone = "UTC"
			}
			prev := from
			for i, ts := range got {
				if !ts.After(prev) {
					t.Errorf("time %d (%v) is not after %v", i, ts, prev)
				}
				if ts.Location().String() != wantZone {
					t.Errorf("time %d is in %v, want %s", i, ts.Location(), wantZone)
				}
				prev = ts
			}
		})
	}
}

func TestPreviewRejectsInvalid(t *testing.T) {
	if _, err := Preview("*/10 * * * *", "", time.Now(), 3); err == nil || !strings.Contains(err.Error(), "preview schedule: fires every 10m") {
		t.Errorf("error = %v, want the sub-hour problem", err)
	}
}
