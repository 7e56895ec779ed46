package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/stores/file"
)

// silent hides the fake's InUse: a kind that cannot tell whether a version is in use.
type silent struct{ rotators.Rotator }

func TestCheckUsage(t *testing.T) {
	target := fake.NewWithUsage(fake.Twins)
	since := time.Now()
	open := rotators.Use{User: "app_a", Application: "orders-api", Client: "10.0.0.5:41000", Since: since.Add(-time.Hour)}
	target.SetUses("app_a", open)
	a := dueActivities(t, "postgres", target, true)
	plan, err := a.Plan(context.Background(), activities.PlanInput{SecretID: dueID})
	if err != nil {
		t.Fatal(err)
	}
	keep := *plan.Current
	keep.Metadata = map[string]string{"role": "app_b"}
	in := activities.CheckUsageInput{SecretID: dueID, Version: *plan.Current, Keep: &keep, Since: since}

	res, err := a.CheckUsage(context.Background(), in)
	if err != nil || res.Unsupported || !res.InUse() || res.Uses[0] != open || res.Checked == "" {
		t.Fatalf("CheckUsage = %+v, %v: want the open session", res, err)
	}
	target.SetUses("app_a")
	if res, err := a.CheckUsage(context.Background(), in); err != nil || res.InUse() {
		t.Fatalf("CheckUsage = %+v, %v: want idle once the session closed", res, err)
	}

	// A kind that cannot tell says so instead of passing for idle.
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := activities.NewActivities(bound{activities.Binding{Kind: "localca", Steps: rotation.Steps{SecretID: dueID, Rotator: silent{target.Rotator}, Store: store}}})
	if res, err := b.CheckUsage(context.Background(), in); err != nil || !res.Unsupported {
		t.Fatalf("CheckUsage on a kind without InUse = %+v, %v: want Unsupported", res, err)
	}
}

// The plan carries the binding's revoke gate to the workflow.
func TestPlanCarriesTheRevokeGate(t *testing.T) {
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gate := &activities.RevokeGate{MaxWait: time.Hour, Poll: 30 * time.Second, Hold: true}
	a := activities.NewActivities(bound{activities.Binding{Kind: "postgres", RevokeGate: gate, Steps: rotation.Steps{SecretID: dueID, Rotator: fake.New(fake.Twins), Store: store}}})
	plan, err := a.Plan(context.Background(), activities.PlanInput{SecretID: dueID})
	if err != nil || plan.RevokeGate == nil || *plan.RevokeGate != *gate {
		t.Fatalf("Plan = %+v, %v", plan, err)
	}
}
