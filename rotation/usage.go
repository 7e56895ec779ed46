package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// InUse asks the target whether old is still in use, for the revoke gate. keep is the
// version that replaced it (never counted as a use of old) and since is when keep was
// promoted: a use the target saw before then is no sign that a consumer has not moved.
//
// supported is false, with a zero Usage and no error, when the kind cannot tell (its
// rotator is not a rotators.UsageReporter: certificates, an HTTP API without a declared
// in_use check); the gate then relies on the grace period alone. It only reads the
// target, so the gate may call it as often as it polls.
func (s Steps) InUse(ctx context.Context, old secret.Version, keep *secret.Version, since time.Time) (usage rotators.Usage, supported bool, err error) {
	r, ok := s.Rotator.(rotators.UsageReporter)
	if !ok {
		return rotators.Usage{}, false, nil
	}
	usage, err = r.InUse(ctx, rotators.UsageRequest{Version: old, Keep: keep, Since: since})
	if err != nil {
		return rotators.Usage{}, true, fmt.Errorf("check whether version %d is in use: %w", old.Number, err)
	}
	return usage, true, nil
}

// ReportsUsage reports whether the secret's kind can tell if a version is in use, so
// that the gate (and status) can say up front that only the grace period protects
// consumers.
func (s Steps) ReportsUsage() bool {
	_, ok := s.Rotator.(rotators.UsageReporter)
	return ok
}
