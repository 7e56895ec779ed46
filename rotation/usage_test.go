package rotation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
)

// usageTarget is the fake target that also reports usage: what it last was asked, and
// what it answers.
type usageTarget struct {
	*fake.Rotator
	got   rotators.UsageRequest
	usage rotators.Usage
	err   error
}

func (u *usageTarget) InUse(_ context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	u.got = req
	return u.usage, u.err
}

func TestInUseUnsupportedKind(t *testing.T) {
	s, _, _ := newSteps(t, false)
	v1 := rotateFully(t, s, "tok-1")
	v2 := rotateFully(t, s, "tok-2")
	if s.ReportsUsage() {
		t.Error("ReportsUsage = true for a rotator that is not a UsageReporter")
	}
	usage, supported, err := s.InUse(t.Context(), v1, &v2, time.Now())
	if err != nil || supported || usage.InUse() || usage.Checked != "" {
		t.Errorf("InUse = %+v, %v, %v; want a zero Usage, unsupported, no error", usage, supported, err)
	}
}

func TestInUsePassesTheRequestAndTheAnswer(t *testing.T) {
	s, target, _ := newSteps(t, false)
	v1 := rotateFully(t, s, "tok-1")
	v2 := rotateFully(t, s, "tok-2")
	u := &usageTarget{Rotator: target, usage: rotators.Usage{
		Uses:    []rotators.Use{{User: "app_a", Application: "orders", Client: "10.0.0.7"}},
		Checked: "sessions of role app_a",
	}}
	s.Rotator = u
	if !s.ReportsUsage() {
		t.Error("ReportsUsage = false for a UsageReporter")
	}
	since := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	usage, supported, err := s.InUse(t.Context(), v1, &v2, since)
	if err != nil || !supported {
		t.Fatalf("InUse: supported=%v err=%v", supported, err)
	}
	if !usage.InUse() || usage.Uses[0].Application != "orders" || usage.Checked != "sessions of role app_a" {
		t.Errorf("InUse = %+v, want the target's answer", usage)
	}
	if u.got.Version.Token != v1.Token || u.got.Keep == nil || u.got.Keep.Token != v2.Token || !u.got.Since.Equal(since) {
		t.Errorf("the target was asked %+v; want version %s, keep %s, since %v", u.got, v1.Token, v2.Token, since)
	}

	u.err = rotators.ErrPermissionDenied
	_, supported, err = s.InUse(t.Context(), v1, &v2, since)
	if !supported || !errors.Is(err, rotators.ErrPermissionDenied) {
		t.Errorf("InUse with a failing target = supported %v, %v; want supported and the target's error", supported, err)
	}
}
