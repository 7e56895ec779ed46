package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// DueInput names the secret whose renewal is checked.
type DueInput struct {
	SecretID secret.ID `json:"secretId"`
}

// DueResult says whether the secret's current version should be replaced now.
type DueResult struct {
	// Due is true when a rotation should start now.
	Due bool `json:"due"`
	// At is when the current version is (or was) due; zero when it never is, because the
	// kind's versions do not expire.
	At time.Time `json:"at,omitzero"`
	// Reason says why, in words, for the scheduled run's result and the Web UI.
	Reason string `json:"reason"`
}

// Due reports whether the secret's current version should be renewed now. Only kinds
// whose versions expire (a rotators.Renewer: certificates) are ever due; any other kind
// rotates on its cron schedule alone, so it is reported as not due rather than failing
// the hourly renewal check. A secret with no current version is due at once: there is
// nothing for consumers to use yet.
func (a *Activities) Due(ctx context.Context, in DueInput) (DueResult, error) {
	b, err := a.resolve(ctx, in.SecretID)
	if err != nil {
		return DueResult{}, err
	}
	renewer, ok := b.Steps.Rotator.(rotators.Renewer)
	if !ok {
		return DueResult{Reason: fmt.Sprintf("kind %q does not expire, so it is never due for renewal; it rotates on its cron schedule only", b.Kind)}, nil
	}
	now := time.Now()
	current, err := b.Steps.Current(ctx)
	if err != nil {
		return DueResult{}, classify(err)
	}
	if current == nil {
		return DueResult{Due: true, At: now, Reason: "no current version yet: the first one is issued now"}, nil
	}
	due, at := renewer.Due(*current, now)
	if !due {
		return DueResult{At: at, Reason: fmt.Sprintf("version %d is due for renewal at %s", current.Number, at.UTC().Format(time.RFC3339))}, nil
	}
	return DueResult{Due: true, At: at, Reason: fmt.Sprintf("version %d was due for renewal at %s", current.Number, at.UTC().Format(time.RFC3339))}, nil
}
