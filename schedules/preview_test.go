package schedules_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/schedules/cronspec"
	"github.com/keyturn/keyturn/secret"
)

// The preview (robfig/cron, in the inventory's zone) and Temporal must agree on every
// next run, for descriptors, named days and months, steps, lists and zones on both sides
// of UTC. The window is zero here: Temporal's next times include the jitter.
func TestSchedulePreviewMatchesTemporalNextActionTimes(t *testing.T) {
	s := startServer(t)
	cases := []struct {
		id       secret.ID
		spec, tz string
	}{
		{"p/weekly", "@weekly", "UTC"},
		{"p/weekly-ny", "@weekly", "America/New_York"},
		{"p/daily-berlin", "@daily", "Europe/Berlin"},
		{"p/monthly-kolkata", "@monthly", "Asia/Kolkata"},
		{"p/yearly", "@yearly", "UTC"},
		{"p/hourly", "@hourly", "Australia/Adelaide"},
		{"p/monday", "0 3 * * 1", "Europe/Berlin"},
		{"p/weekdays", "15 4 * * MON-FRI", "America/Los_Angeles"},
		{"p/steps", "30 */6 * * *", "Asia/Tokyo"},
		{"p/list", "0 2 1,15 * *", "Pacific/Auckland"},
		{"p/months", "45 23 * JAN,APR,JUL,OCT SUN", "America/Sao_Paulo"},
	}
	var secrets []schedules.SourceSecret
	for _, c := range cases {
		secrets = append(secrets, pg(c.id, c.spec, c.tz))
	}
	inv := inventoryOf(secrets...)
	desired, err := schedules.Desire(inv)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	s.apply(t, inv)
	for i, c := range cases {
		t.Run(c.spec+" "+c.tz, func(t *testing.T) {
			got := s.get(t, desired[i].ScheduleID).NextRuns
			if len(got) < 5 {
				t.Fatalf("Temporal gave %d next times", len(got))
			}
			want, err := desired[i].Next(from, len(got)+1)
			if err != nil {
				t.Fatal(err)
			}
			// A time that passed between from and the describe is Temporal's past.
			for len(want) > 0 && want[0].Before(got[0]) {
				want = want[1:]
			}
			want = want[:min(len(want), len(got))]
			if len(want) != len(got) {
				t.Fatalf("preview %v, Temporal %v", want, got)
			}
			for j := range got {
				if !got[j].Equal(want[j]) {
					t.Fatalf("run %d: preview %s, Temporal %s\npreview  %v\ntemporal %v", j, want[j], got[j], want, got)
				}
			}
		})
	}
}

// Both sides read a zone's daylight-saving changes the same way: a time the clocks skip
// does not fire that day, and a time the clocks repeat fires twice. Temporal's next times
// are read from a schedule that starts just before the zone's next change.
func TestScheduleDaylightSavingMatchesTemporal(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	const tz = "America/New_York"
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	spring, autumn := nextOffsetChanges(t, loc)
	for _, c := range []struct {
		name   string
		spec   string
		change time.Time
	}{
		{"skipped hour", "30 2 * * *", spring},
		{"repeated hour", "30 1 * * *", autumn},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := c.change.Add(-36 * time.Hour)
			parsed, err := cronspec.Parse(c.spec, tz)
			if err != nil {
				t.Fatal(err)
			}
			id := "dst-probe-" + c.spec[:4]
			h, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
				ID:     id,
				Spec:   client.ScheduleSpec{CronExpressions: []string{c.spec}, TimeZoneName: tz, StartAt: start},
				Action: &client.ScheduleWorkflowAction{Workflow: "Probe", TaskQueue: "probe"},
				Paused: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			desc, err := h.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := desc.Info.NextActionTimes[:4]
			var want []time.Time
			for t0 := start; len(want) < len(got); {
				t0 = parsed.Next(t0)
				want = append(want, t0)
			}
			for i := range got {
				if !got[i].Equal(want[i]) {
					t.Fatalf("around %s: robfig/cron %v, Temporal %v", c.change, want, got)
				}
			}
			// The behaviour itself, which docs/schedules.md states: on the day of the
			// change the skipped 02:30 does not fire, and the repeated 01:30 fires twice.
			day := c.change.In(loc).Format(time.DateOnly)
			fires := 0
			for _, g := range got {
				if g.In(loc).Format(time.DateOnly) == day {
					fires++
				}
			}
			wantFires := map[string]int{"skipped hour": 0, "repeated hour": 2}[c.name]
			if fires != wantFires {
				t.Fatalf("%s fired %d times on %s, want %d: %v", c.spec, fires, day, wantFires, got)
			}
		})
	}
}

// nextOffsetChanges finds the zone's next spring-forward and fall-back instants, scanning
// hour by hour from a day from now.
func nextOffsetChanges(t *testing.T, loc *time.Location) (spring, autumn time.Time) {
	t.Helper()
	at := time.Now().Add(24 * time.Hour).Truncate(time.Hour)
	_, off := at.In(loc).Zone()
	for i := 0; i < 2*366*24 && (spring.IsZero() || autumn.IsZero()); i++ {
		at = at.Add(time.Hour)
		_, o := at.In(loc).Zone()
		switch {
		case o > off && spring.IsZero():
			spring = at
		case o < off && autumn.IsZero():
			autumn = at
		}
		off = o
	}
	if spring.IsZero() || autumn.IsZero() {
		t.Fatalf("no daylight-saving change in %s within two years", loc)
	}
	return spring, autumn
}
