package schedules_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func pg(id secret.ID, spec, tz string) schedules.SourceSecret {
	return schedules.SourceSecret{ID: id, Kind: "postgres", Schedule: spec, Timezone: tz}
}

func TestScheduleApplyCreatesUpdatesDeletesAndConverges(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	// A schedule that is not Keyturn's must survive every apply.
	foreign := "nightly-report"
	if _, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:     foreign,
		Spec:   client.ScheduleSpec{CronExpressions: []string{"0 1 * * *"}},
		Action: &client.ScheduleWorkflowAction{Workflow: "Report", TaskQueue: "reports"},
	}); err != nil {
		t.Fatal(err)
	}

	berlin := pg("prod/b", "@daily", "Europe/Berlin")
	berlin.Window = 30 * time.Minute
	v1 := inventoryOf(pg("prod/a", "0 3 * * 1", ""), berlin, schedules.SourceSecret{ID: "prod/cert", Kind: "localca", Certificate: true})
	plan := s.apply(t, v1)
	want := map[string]schedules.Action{"keyturn/prod/a": schedules.Create, "keyturn/prod/b": schedules.Create, "keyturn-renew/prod/cert": schedules.Create}
	if len(plan) != len(want) {
		t.Fatalf("first plan:\n%s", render(plan))
	}
	for id, action := range want {
		if c, ok := byID(plan, id); !ok || c.Action != action {
			t.Errorf("first plan: %s should %s:\n%s", id, action, render(plan))
		}
	}
	if again := s.plan(t, v1); again.Pending() != 0 {
		t.Fatalf("a second plan of the same inventory must be empty:\n%s", render(again))
	}

	b := s.get(t, "keyturn/prod/b")
	if b.Spec != "@daily" || b.Timezone != "Europe/Berlin" || b.Window != 30*time.Minute || b.Paused {
		t.Errorf("keyturn/prod/b as created: %+v", b)
	}
	desc, err := s.c.ScheduleClient().GetHandle(ctx, "keyturn/prod/b").Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Schedule.Policy.CatchupWindow != testCatchup || desc.Schedule.Policy.Overlap.String() != "Skip" {
		t.Errorf("policies: %+v", desc.Schedule.Policy)
	}
	if a := desc.Schedule.Action.(*client.ScheduleWorkflowAction); a.Workflow != workflows.ScheduledWorkflowName || a.TaskQueue != workflows.TaskQueue {
		t.Errorf("action: %+v", a)
	}
	renew := s.get(t, "keyturn-renew/prod/cert")
	if !renew.RenewalCheck || len(renew.NextRuns) < 2 || renew.NextRuns[1].Sub(renew.NextRuns[0]) != schedules.RenewalCheckEvery {
		t.Errorf("renewal check: %+v", renew)
	}

	// Deleting needs the schedule list, which lags behind creation.
	s.listed(t, 3)
	// The schedules carry the secret's search attributes, for the Web UI's filters.
	it, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{Query: "KeyturnSecretID = 'prod/cert' AND KeyturnKind = 'localca'"})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, e.ID)
	}
	if strings.Join(found, " ") != "keyturn-renew/prod/cert" {
		t.Errorf("schedules found by search attributes: %v", found)
	}

	v2 := inventoryOf(pg("prod/a", "0 4 * * 1", ""), pg("prod/d", "0 5 1 * *", "America/New_York"), schedules.SourceSecret{ID: "prod/cert", Kind: "localca", Certificate: true})
	plan = s.apply(t, v2)
	for id, check := range map[string]struct {
		action schedules.Action
		reason string
	}{
		"keyturn/prod/a":          {schedules.Update, `spec changed from "0 3 * * 1" to "0 4 * * 1"`},
		"keyturn/prod/b":          {schedules.Delete, "prod/b is no longer in the inventory"},
		"keyturn/prod/d":          {schedules.Create, `"0 5 1 * *" in America/New_York`},
		"keyturn-renew/prod/cert": {schedules.Unchanged, ""},
	} {
		c, ok := byID(plan, id)
		if !ok || c.Action != check.action || !strings.Contains(c.String(), check.reason) {
			t.Errorf("second plan: %s should %s (%s):\n%s", id, check.action, check.reason, render(plan))
		}
	}
	if _, ok := byID(plan, foreign); ok {
		t.Errorf("the plan mentions a schedule that is not Keyturn's:\n%s", render(plan))
	}
	if again := s.plan(t, v2); again.Pending() != 0 {
		t.Fatalf("after apply, a new plan must be empty:\n%s", render(again))
	}
	// Applying the same (now stale) plan again changes nothing and fails nothing.
	if err := schedules.Apply(ctx, s.c, s.namespace, plan); err != nil {
		t.Fatalf("re-applying a plan: %v", err)
	}
	a := s.get(t, "keyturn/prod/a")
	if a.Spec != "0 4 * * 1" || len(a.NextRuns) == 0 || a.NextRuns[0].UTC().Hour() != 4 || a.NextRuns[0].UTC().Weekday() != time.Monday {
		t.Errorf("keyturn/prod/a after the update: %+v", a)
	}
	if _, err := schedules.Get(ctx, s.c, "keyturn/prod/b"); err == nil {
		t.Error("keyturn/prod/b should be deleted")
	}
	if _, err := s.c.ScheduleClient().GetHandle(ctx, foreign).Describe(ctx); err != nil {
		t.Errorf("the foreign schedule must survive: %v", err)
	}

	// A secret that loses its schedule loses the schedule, with the reason in words.
	s.listed(t, 3)
	plan = s.plan(t, inventoryOf(pg("prod/a", "", ""), pg("prod/d", "0 5 1 * *", "America/New_York"), schedules.SourceSecret{ID: "prod/cert", Kind: "postgres"}))
	for id, reason := range map[string]string{
		"keyturn/prod/a":          "prod/a no longer has a schedule in the inventory",
		"keyturn-renew/prod/cert": `prod/cert is no longer a certificate kind (kind "postgres")`,
	} {
		if c, ok := byID(plan, id); !ok || c.Action != schedules.Delete || c.Reasons[0] != reason {
			t.Errorf("%s: want delete because %q:\n%s", id, reason, render(plan))
		}
	}
}

func TestScheduleDiffChangesNothing(t *testing.T) {
	s := startServer(t)
	s.apply(t, inventoryOf(pg("prod/a", "0 3 * * 1", ""), pg("prod/b", "@weekly", "")))
	before := s.listed(t, 2)

	plan := s.plan(t, inventoryOf(pg("prod/a", "30 6 * * *", "Asia/Tokyo"), pg("prod/c", "@daily", "")))
	if plan.Pending() != 3 {
		t.Fatalf("want 3 pending changes (update a, create c, delete b):\n%s", render(plan))
	}
	after := s.listed(t, 2)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("planning changed the schedules:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestSchedulePauseSurvivesAnApplyThatChangesTheSpec(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.apply(t, inventoryOf(pg("prod/a", "0 3 * * 1", ""), schedules.SourceSecret{ID: "prod/cert", Kind: "vaultpki", Certificate: true}))

	paused, err := schedules.Pause(ctx, s.c, []secret.ID{"prod/a", "prod/cert", "prod/unscheduled"}, "INC-42: leaked credentials")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(paused, " ") != "keyturn/prod/a keyturn-renew/prod/cert" {
		t.Fatalf("paused %v", paused)
	}

	changed := inventoryOf(pg("prod/a", "0 4 * * 2", "Europe/Paris"), schedules.SourceSecret{ID: "prod/cert", Kind: "vaultpki", Certificate: true})
	plan := s.apply(t, changed)
	c, _ := byID(plan, "keyturn/prod/a")
	if c.Action != schedules.Update || !c.Paused || c.Note != "INC-42: leaked credentials" || !strings.Contains(c.String(), "stays paused") {
		t.Fatalf("the plan must show the update and the pause it keeps: %s", c)
	}
	a := s.get(t, "keyturn/prod/a")
	if !a.Paused || a.Note != "INC-42: leaked credentials" || a.Spec != "0 4 * * 2" || a.Timezone != "Europe/Paris" {
		t.Fatalf("after apply: %+v", a)
	}
	if again := s.plan(t, changed); again.Pending() != 0 {
		t.Fatalf("a paused schedule in line with the inventory must plan as unchanged:\n%s", render(again))
	}

	resumed, err := schedules.Resume(ctx, s.c, []secret.ID{"prod/a"}, "INC-42 closed")
	if err != nil || len(resumed) != 1 {
		t.Fatalf("resume: %v %v", resumed, err)
	}
	if a := s.get(t, "keyturn/prod/a"); a.Paused || a.Note != "INC-42 closed" {
		t.Fatalf("after resume: %+v", a)
	}
	if cert := s.get(t, "keyturn-renew/prod/cert"); !cert.Paused {
		t.Fatalf("resuming prod/a must leave prod/cert paused: %+v", cert)
	}
}

// A schedule edited by hand (here: in the Web UI's place, through the SDK) is found by
// the next plan and put back.
func TestScheduleDriftIsFoundAndUndone(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	inv := inventoryOf(pg("prod/a", "0 3 * * 1", ""))
	s.apply(t, inv)
	err := s.c.ScheduleClient().GetHandle(ctx, "keyturn/prod/a").Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := in.Description.Schedule
			sched.Spec.Jitter = 10 * time.Minute
			sched.Policy.CatchupWindow = time.Hour
			// The runs rely on the step the action sets; without it they would show none.
			act := sched.Action.(*client.ScheduleWorkflowAction)
			act.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.SearchAttrSecretID.ValueSet("prod/a"))
			act.UntypedSearchAttributes = nil
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	plan := s.plan(t, inv)
	c, _ := byID(plan, "keyturn/prod/a")
	reasons := strings.Join(c.Reasons, "; ")
	if c.Action != schedules.Update || !strings.Contains(reasons, "the window (jitter) was changed outside keyturn apply (Temporal has 10m") || !strings.Contains(reasons, "the catch-up window was changed outside keyturn apply") ||
		!strings.Contains(reasons, "the runs' search attribute KeyturnStep was changed outside keyturn apply") {
		t.Fatalf("drift not found: %s", c)
	}
	s.apply(t, inv)
	if again := s.plan(t, inv); again.Pending() != 0 {
		t.Fatalf("drift must be undone:\n%s", render(again))
	}
}

func TestScheduleApplyRefusesForeignIDs(t *testing.T) {
	s := startServer(t)
	err := schedules.Apply(context.Background(), s.c, s.namespace, schedules.Changes{{Action: schedules.Delete, ScheduleID: "nightly-report"}})
	if err == nil || !strings.Contains(err.Error(), "not a Keyturn schedule") {
		t.Fatalf("want a refusal, got %v", err)
	}
}
