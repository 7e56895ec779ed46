package rotation_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
)

// Containment skips the revoke gate but records whom it cut off: the uses of every
// version the target showed just before they were revoked, each listed once.
func TestContainRecordsTheSessionsItEnds(t *testing.T) {
	ctx := context.Background()
	s, plain, _ := newSteps(t, false)
	target := fake.ReportingUses(plain)
	s.Rotator = target
	rotateFully(t, s, "t1") // app_a
	rotateFully(t, s, "t2") // app_b current, app_a previous
	a := rotators.Use{User: "app_a", Application: "old-consumer", Client: "10.0.0.5:41000", Since: time.Now().Add(-time.Hour)}
	b := rotators.Use{User: "app_b", Application: "orders-api", Client: "10.0.0.6:41000", Since: time.Now().Add(-time.Minute)}
	target.SetUses("app_a", a)
	target.SetUses("app_b", b)
	res, err := s.Contain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ended) != 2 || res.Ended[0] != b || res.Ended[1] != a || res.EndedUnknown != "" {
		t.Fatalf("ended %+v (%q), want the current version's session, then the previous one's", res.Ended, res.EndedUnknown)
	}
}
