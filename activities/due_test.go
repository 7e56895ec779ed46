package activities_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

const dueID = secret.ID("certs/api")

// expiring is a fake target whose versions expire at a fixed time, as a certificate does.
type expiring struct {
	*fake.Rotator
	dueAt time.Time
}

var _ rotators.Renewer = expiring{}

func (e expiring) Due(_ secret.Version, now time.Time) (bool, time.Time) {
	return !now.Before(e.dueAt), e.dueAt
}

// bound resolves dueID, and nothing else, to one rotator and store.
type bound struct{ b activities.Binding }

func (r bound) Resolve(_ context.Context, id secret.ID) (activities.Binding, error) {
	if id != r.b.Steps.SecretID {
		return activities.Binding{}, activities.ErrUnknownSecret
	}
	return r.b, nil
}

// dueActivities binds dueID to rot over a fresh file store, with a current version when
// seeded is set.
func dueActivities(t *testing.T, kind string, rot rotators.Rotator, seeded bool) *activities.Activities {
	t.Helper()
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := rotation.Steps{SecretID: dueID, Rotator: rot, Store: store}
	if seeded {
		ctx := context.Background()
		if _, err := steps.Create(ctx, "seed"); err != nil {
			t.Fatal(err)
		}
		if _, err := steps.Promote(ctx, "seed"); err != nil {
			t.Fatal(err)
		}
	}
	return activities.NewActivities(bound{activities.Binding{Kind: kind, Steps: steps}})
}

func TestDue(t *testing.T) {
	future := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for name, tc := range map[string]struct {
		kind       string
		rot        rotators.Rotator
		seeded     bool
		wantDue    bool
		wantAt     time.Time // zero: only checked to be zero when wantNoAt
		wantNoAt   bool
		wantReason string
	}{
		"kind that does not expire": {kind: "postgres", rot: fake.New(fake.Twins), seeded: true, wantNoAt: true, wantReason: `kind "postgres" does not expire`},
		"no current version":        {kind: "localca", rot: expiring{fake.New(fake.Shared), future}, wantDue: true, wantReason: "no current version"},
		"not due yet":               {kind: "localca", rot: expiring{fake.New(fake.Shared), future}, seeded: true, wantAt: future, wantReason: "version 1 is due for renewal at " + future.UTC().Format(time.RFC3339)},
		"due":                       {kind: "localca", rot: expiring{fake.New(fake.Shared), past}, seeded: true, wantDue: true, wantAt: past, wantReason: "version 1 was due"},
	} {
		t.Run(name, func(t *testing.T) {
			a := dueActivities(t, tc.kind, tc.rot, tc.seeded)
			res, err := a.Due(context.Background(), activities.DueInput{SecretID: dueID})
			if err != nil {
				t.Fatal(err)
			}
			if res.Due != tc.wantDue {
				t.Errorf("due = %v, want %v (%s)", res.Due, tc.wantDue, res.Reason)
			}
			if !strings.Contains(res.Reason, tc.wantReason) {
				t.Errorf("reason %q lacks %q", res.Reason, tc.wantReason)
			}
			if tc.wantNoAt && !res.At.IsZero() {
				t.Errorf("at = %v, want zero for a kind that never expires", res.At)
			}
			if !tc.wantAt.IsZero() && !res.At.Equal(tc.wantAt) {
				t.Errorf("at = %v, want %v", res.At, tc.wantAt)
			}
		})
	}
}

func TestDueUnknownSecretIsNotRetryable(t *testing.T) {
	a := dueActivities(t, "localca", fake.New(fake.Shared), false)
	_, err := a.Due(context.Background(), activities.DueInput{SecretID: "certs/other"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeUnknownSecret || !appErr.NonRetryable() {
		t.Fatalf("want a non-retryable %s error, got %v", activities.ErrTypeUnknownSecret, err)
	}
}
