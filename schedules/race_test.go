package schedules

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// An incident may pause a schedule while apply is between reading it and updating it.
// Apply's update then carries a stale conflict token: Temporal drops it (without an
// error), so the pause stands, and apply reads the schedule again and updates it from
// the paused state. This test makes that interleaving happen step by step.
func TestScheduleUpdateRacingAPauseKeepsThePause(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := testenv.Temporal(t, logger)
	c := testenv.Client(t, srv, logger, nil)
	ns := srv.Namespace()
	ctx := context.Background()

	desired := func(spec string) *Desired {
		ds, err := Desire(Source{CatchupWindow: 15 * time.Minute, Secrets: []SourceSecret{{ID: "prod/a", Kind: "postgres", Schedule: spec}}})
		if err != nil {
			t.Fatal(err)
		}
		return &ds[0]
	}
	if err := create(ctx, c, ns, desired("0 3 * * 1"), false); err != nil {
		t.Fatal(err)
	}

	// Apply reads the schedule (unpaused) and builds its update from that state...
	d := desired("0 4 * * 1")
	stale, err := describe(ctx, c, ns, d.ScheduleID)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := d.schedule(stale.GetSchedule().GetState())
	if err != nil {
		t.Fatal(err)
	}
	// ...an incident pauses it...
	h := c.ScheduleClient().GetHandle(ctx, d.ScheduleID)
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "INC-7"}); err != nil {
		t.Fatal(err)
	}
	// ...and the update arrives with the token read before the pause.
	if _, err := c.WorkflowService().UpdateSchedule(ctx, &workflowservice.UpdateScheduleRequest{
		Namespace: ns, ScheduleId: d.ScheduleID, Schedule: sched, ConflictToken: stale.GetConflictToken(), RequestId: "stale-update",
	}); err != nil {
		t.Fatalf("Temporal answers a stale update without an error; got %v", err)
	}
	after, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Schedule.State.Paused || after.Schedule.State.Note != "INC-7" || after.Schedule.Spec.Calendars[0].Comment != "0 3 * * 1" {
		t.Fatalf("the stale update must have been dropped: state %+v, spec %q", after.Schedule.State, after.Schedule.Spec.Calendars[0].Comment)
	}

	// Apply's own update loop reads again and lands the change on the paused schedule.
	if err := update(ctx, c, ns, d, false); err != nil {
		t.Fatal(err)
	}
	final, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !final.Schedule.State.Paused || final.Schedule.State.Note != "INC-7" || final.Schedule.Spec.Calendars[0].Comment != "0 4 * * 1" {
		t.Fatalf("want the new spec on a schedule still paused by INC-7: state %+v, spec %q", final.Schedule.State, final.Schedule.Spec.Calendars[0].Comment)
	}
}
