package activities

import (
	"testing"

	"go.temporal.io/sdk/activity"
)

// TestLocalAndRegularActivitiesHaveDistinctKeys: the SDK numbers a run's local
// activities apart from its regular ones, so a local Promote and a regular Create can
// both be activity "2". Their audit records must still get distinct IDs, or the trail
// keeps one and drops the other as a duplicate.
func TestLocalAndRegularActivitiesHaveDistinctKeys(t *testing.T) {
	regular := activityKey(activity.Info{ActivityID: "2"})
	local := activityKey(activity.Info{ActivityID: "2", IsLocalActivity: true})
	if regular != "2" || local == regular {
		t.Fatalf("activity 2 is keyed %q as a regular activity and %q as a local one; want 2 and a distinct key", regular, local)
	}
}
