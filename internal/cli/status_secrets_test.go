package cli

import (
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/secret"
)

// TestSecretColumns: the AGE column tells a secret never rotated from one whose current
// version is gone and from one whose age the store does not record; the REVOKE column
// says which revoke is outstanding, a failed one included.
func TestSecretColumns(t *testing.T) {
	one, zero := 1, 0
	no := false
	for _, c := range []struct {
		name        string
		s           secretstate.Secret
		age, revoke string
	}{
		{"never rotated", secretstate.Secret{Overdue: &no, RevokesOutstanding: &zero}, "never rotated", "-"},
		{"versions, none current", secretstate.Secret{Versions: 2, RevokesOutstanding: &one, RevokeState: secretstate.RollbackRetrying}, "no current version", "rollback retrying"},
		{"no creation time", secretstate.Secret{Current: &secret.Version{Number: 3}, Versions: 1, OverdueReason: "age unknown: the store records no creation time for version 3", RevokesOutstanding: &one, RevokeState: secretstate.RevokeFailed}, "unknown", "failed"},
		{"store unread", secretstate.Secret{StoreError: "down", RevokesOutstanding: &one, RevokeState: secretstate.RevokeRetrying}, "?", "retrying"},
		{"temporal unread", secretstate.Secret{RotationError: "down"}, "never rotated", "?"},
	} {
		if got := age(c.s); got != c.age {
			t.Errorf("%s: AGE %q, want %q", c.name, got, c.age)
		}
		if got := revoke(c.s); got != c.revoke {
			t.Errorf("%s: REVOKE %q, want %q", c.name, got, c.revoke)
		}
	}
	undated := secretstate.Secret{Current: &secret.Version{Number: 3}, OverdueReason: "age unknown: the store records no creation time for version 3", StoreError: ""}
	if u := unknowns(undated); len(u) != 1 || !strings.Contains(u[0], "no creation time") {
		t.Errorf("an unknown age is listed with its reason: %v", u)
	}
}
