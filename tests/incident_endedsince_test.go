package tests

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// TestStopRotationsFindsOneThatEndedSince: after an incident's schedules are paused, its
// second stop also asks for rotations that ended since the incident began, whose
// rollback may have re-applied a credential the containment had revoked. On the real
// server's visibility store: a rotation that ended after EndedSince is returned, one
// that ended before it is not, and without EndedSince only running rotations count.
func TestStopRotationsFindsOneThatEndedSince(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	before := time.Now().Add(-time.Second) // the server's clock is this machine's
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	after := time.Now().Add(time.Second)
	ia := activities.NewIncidentActivities(env.Client, nil, nil, nil)
	ids := []secret.ID{id, "e2e/other"}
	for _, c := range []struct {
		name  string
		since time.Time
		want  []secret.ID
	}{
		{"since before it ended", before, []secret.ID{id}},
		{"since after it ended", after, nil},
		{"running ones only", time.Time{}, nil},
	} {
		var got []secret.ID
		var err error
		// The visibility store is eventually consistent: the ended rotation may take a
		// moment to be listed.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			got, err = ia.StopRotations(ctx, activities.StopRotationsInput{IDs: ids, Reason: "test", EndedSince: c.since})
			if err != nil || slices.Equal(got, c.want) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
