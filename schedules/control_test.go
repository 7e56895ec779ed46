package schedules_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
)

// TestPauseScopeOwnsOnlyWhatItPaused: over a scope of more than twenty secrets (where the
// schedules were once found by listing), a schedule created just before is paused; one
// paused beforehand with another note is kept as it is; pausing again is idempotent; and
// resuming with the incident's note resumes only schedules that still carry it.
func TestPauseScopeOwnsOnlyWhatItPaused(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	var secrets []schedules.SourceSecret
	var ids []secret.ID
	for i := range 25 {
		id := fmt.Sprintf("prod/s%02d", i)
		secrets = append(secrets, pg(secret.ID(id), "0 3 * * 1", ""))
		ids = append(ids, secret.ID(id))
	}
	s.apply(t, inventoryOf(secrets[:1]...))
	if _, err := schedules.Pause(ctx, s.c, ids[:1], "maintenance"); err != nil {
		t.Fatal(err)
	}
	s.apply(t, inventoryOf(secrets...)) // the rest are created right before the pause
	const note = "incident i-1 (oncall): leak"
	got, err := schedules.PauseScope(ctx, s.c, append(ids, "prod/unscheduled"), note)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range ids[1:] {
		want = append(want, schedules.CronScheduleID(id))
	}
	if !reflect.DeepEqual(got.Paused, want) || !reflect.DeepEqual(got.KeptPaused, []string{"keyturn/prod/s00"}) {
		t.Fatalf("paused %v, kept %v; want every schedule but keyturn/prod/s00 paused", got.Paused, got.KeptPaused)
	}
	if again, err := schedules.PauseScope(ctx, s.c, ids, note); err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("pausing again (a retried activity) gave %+v, %v; want %+v", again, err, got)
	}
	if a := s.get(t, "keyturn/prod/s00"); !a.Paused || a.Note != "maintenance" {
		t.Fatalf("the operator's pause was changed: %+v", a)
	}

	// Someone re-pauses s01 with their own note during the incident.
	if err := s.c.ScheduleClient().GetHandle(ctx, "keyturn/prod/s01").Pause(ctx, client.SchedulePauseOptions{Note: "mine"}); err != nil {
		t.Fatal(err)
	}
	res, err := schedules.ResumePausedWith(ctx, s.c, append(got.Paused, "keyturn/prod/gone"), note, "incident i-1 over")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resumed) != len(want)-1 || !reflect.DeepEqual(res.Left, []string{"keyturn/prod/s01"}) {
		t.Fatalf("resumed %v, left %v; want all but keyturn/prod/s01 resumed", res.Resumed, res.Left)
	}
	for _, id := range ids {
		st := s.get(t, schedules.CronScheduleID(id))
		wantPaused := id == "prod/s00" || id == "prod/s01"
		if st.Paused != wantPaused {
			t.Errorf("%s: paused %v (%q), want %v", id, st.Paused, st.Note, wantPaused)
		}
	}
	if _, err := schedules.ResumePausedWith(ctx, s.c, []string{"other/x"}, note, ""); err == nil {
		t.Fatal("a schedule ID without a Keyturn prefix must be refused")
	}
}
