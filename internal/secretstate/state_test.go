package secretstate_test

import (
	"testing"

	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/workflows"
)

// What a secret's latest rotation leaves outstanding, from its status and outcome. A run
// ended from outside while it retried retries no more: what it retried is failed.
func TestRevokeState(t *testing.T) {
	for _, tc := range []struct {
		status, outcome, want string
		step                  string
	}{
		{secretstate.StatusRunning, workflows.OutcomeRevokeOutstanding, secretstate.RevokeRetrying, ""},
		{secretstate.StatusRunning, workflows.OutcomeRollbackOutstanding, secretstate.RollbackRetrying, ""},
		{"completed", workflows.OutcomeRevokeFailed, secretstate.RevokeFailed, ""},
		{"terminated", workflows.OutcomeRevokeOutstanding, secretstate.RevokeFailed, ""},
		{"terminated", workflows.OutcomeRollbackOutstanding, secretstate.RevokeFailed, ""},
		{"completed", workflows.OutcomeRotated, "", ""},
		{"failed", workflows.OutcomeRolledBack, "", ""},
		{secretstate.StatusRunning, "", "", ""},
		// The revoke gate: waiting within max_wait, held after it; a held run ended from
		// outside leaves a credential nobody revokes.
		{secretstate.StatusRunning, "", secretstate.RevokeWaiting, workflows.StepRevokeGate},
		{secretstate.StatusRunning, workflows.OutcomeRevokeHeld, secretstate.RevokeHeld, workflows.StepRevokeGate},
		{"terminated", workflows.OutcomeRevokeHeld, secretstate.RevokeFailed, workflows.StepRevokeGate},
		{"terminated", "", "", workflows.StepRevokeGate},
	} {
		run := secretstate.Run{Status: tc.status, Outcome: tc.outcome, Step: tc.step}
		if got := run.RevokeState(); got != tc.want {
			t.Errorf("%s run with outcome %q: RevokeState() = %q, want %q", tc.status, tc.outcome, got, tc.want)
		}
	}
}
