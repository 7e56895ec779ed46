package workflows

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// RotateWorkflowName is the registered name of the rotation workflow; schedules, the CLI
// and the incident playbook start it by this name.
const RotateWorkflowName = activities.RotateWorkflowType

// Signal and query names of the Rotate workflow.
const (
	// SignalSkipGrace ends the grace period now and revokes the previous version.
	SignalSkipGrace = "skip-grace"
	// SignalAbort, during the grace period, makes the previous version current again and
	// revokes the new one.
	SignalAbort = "abort"
	// SignalRetryNow makes a rotation whose revoke or rollback is outstanding try again
	// at once instead of at its next scheduled attempt (after fixing the target, say).
	SignalRetryNow = "retry-now"
	// SignalGiveUp ends the attempts of an outstanding revoke or rollback: an operator has
	// decided to finish by hand. The rotation then ends with what is true at that moment.
	// In the revoke gate it stops the gate without revoking, like an abort there.
	SignalGiveUp = "give-up"
	// SignalRevokeNow, while the revoke gate waits for the previous version to go unused
	// (or holds its revoke), revokes it at once, whoever still uses it.
	SignalRevokeNow = "revoke-now"
	// QueryStatus returns a RotateStatus.
	QueryStatus = "status"
)

// RotateWorkflowID is the workflow ID of a secret's rotation. One ID per secret means two
// rotations of one secret never overlap, whoever starts them.
func RotateWorkflowID(id secret.ID) string { return activities.RotationWorkflowID(id) }

// Step names, as shown in the KeyturnStep search attribute and the status query.
const (
	// StepRunning is what KeyturnStep shows while a rotation runs a step it does not
	// wait in (plan, contain, create, test, promote, revoke, rollback): the status query
	// and the Web UI name that step. Rotations that began before generation 3 showed each.
	StepRunning = "running"
	StepPlan    = "plan"
	StepCreate  = "create"
	StepTest    = "test"
	StepPromote = "promote"
	StepGrace   = "grace"
	// StepRevokeGate waits, after the grace period, until the target shows the previous
	// version unused (the secret's revoke_gate policy), or holds its revoke.
	StepRevokeGate = "revoke_gate"
	StepRevoke     = "revoke"
	// StepContain revokes every existing version at once (incident, contain mode).
	StepContain = "contain"
	// StepPurge waits out the kind's recovery window after revoke, then makes the
	// revocation final (deletes a deactivated IAM key).
	StepPurge    = "purge"
	StepRollback = "rollback"
	StepDone     = "done"
)

// Outcomes of a rotation, as the KeyturnOutcome search attribute, the result, `keyturn
// status` and the Web UI show them. The two "outstanding" ones are set while the
// rotation still runs and keeps trying; every other one is final.
const (
	// OutcomeRotated: the new version is current and works, the previous one is revoked.
	OutcomeRotated = "rotated"
	// OutcomeAborted: an operator aborted (or cancelled) the rotation; the previous
	// version is current again (the workflow ends Canceled, never Completed).
	OutcomeAborted = "aborted"
	// OutcomeRolledBack: a step failed and the rotation was undone; the version that was
	// current before is current and was verified to work.
	OutcomeRolledBack = "rolled_back"
	// OutcomeRevokeOutstanding: a credential that must stop working (the previous version
	// after a rotation, or the new one after a rollback) could not be revoked yet; the
	// rotation keeps trying, durably and with backoff, until it succeeds or an operator
	// gives up. The credential consumers read works meanwhile.
	OutcomeRevokeOutstanding = "revoke_outstanding"
	// OutcomeRollbackOutstanding: a rollback could not finish (the store or the target is
	// unreachable); it keeps trying like a revoke.
	OutcomeRollbackOutstanding = "rollback_outstanding"
	// OutcomeRevokeHeld: the revoke gate waited max_wait and the previous version is still
	// in use, so its revoke is held (revoke_gate then: hold). The rotation keeps checking
	// and revokes once the version is idle or an operator sends revoke-now. The new
	// version is current; the old one works meanwhile.
	OutcomeRevokeHeld = "revoke_held"
	// OutcomeRevokeFailed: a credential that should be revoked may still work: an operator
	// gave up on an outstanding revoke, the rotation was cancelled while revoking the
	// previous version, or a rotation an incident started could not revoke (it does not
	// retry; the incident's report names it). The error says which credential.
	OutcomeRevokeFailed = "revoke_failed"
	// OutcomeFailed: the rotation failed and its rollback could not be finished. Needs a
	// human.
	OutcomeFailed = "failed"
)

// IsOutstanding reports whether an outcome is one a running rotation holds while it keeps
// retrying a revoke or a rollback, or holds a revoke in its gate: not a final outcome.
func IsOutstanding(outcome string) bool {
	return outcome == OutcomeRevokeOutstanding || outcome == OutcomeRollbackOutstanding || outcome == OutcomeRevokeHeld
}

// RotateInput starts a rotation. References only: the workflow never sees material.
type RotateInput struct {
	SecretID secret.ID `json:"secretId"`
	// Grace overrides the inventory's grace period when set (zero in an incident).
	Grace *time.Duration `json:"grace,omitempty"`
	// Reason and RequestedBy are recorded for the audit trail.
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	// Contain revokes every existing version first (current included, sessions ended),
	// then creates, tests and promotes a new one: an incident's response to a leak. A
	// failure after containment never restores a contained version.
	Contain bool `json:"contain,omitempty"`
	// AlreadyContained, with Contain, says the incident contained every version just
	// before this rotation started: the contain step is skipped, and still nothing is
	// ever restored.
	AlreadyContained bool `json:"alreadyContained,omitempty"`
	// IncidentID names the incident that started the rotation, if any.
	IncidentID string `json:"incidentId,omitempty"`
	// Generation is the behaviour the starter asks for: RotateGeneration, or zero to let
	// the run record it as a version marker (two history events). Naming it here spares
	// every rotation those events; an older worker ignores it and records the marker.
	Generation int `json:"generation,omitempty"`
}

// MaxReasonRunes bounds the reason an operator gives a rotation or an incident: it is
// copied into the workflow input of everything the command starts, into audit records
// and, cut to fit, into the note of every schedule an incident pauses.
const MaxReasonRunes = 500

// CheckReason refuses a reason longer than MaxReasonRunes, without repeating it. The
// CLI checks it before starting anything; the workflows do not, so that runs started
// before the bound still replay.
func CheckReason(reason string) error {
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return fmt.Errorf("--reason is %d characters long; keep it to %d (name the ticket or document that holds the details)", n, MaxReasonRunes)
	}
	return nil
}

// Validate rejects input no retry can fix.
func (in RotateInput) Validate() error {
	if err := in.SecretID.Validate(); err != nil {
		return err
	}
	if in.Grace != nil && (*in.Grace < 0 || *in.Grace > 7*24*time.Hour) {
		return fmt.Errorf("grace %s is outside 0s..168h", *in.Grace)
	}
	if in.Generation < 0 || (in.Generation > 0 && in.Generation < int(firstNamedGeneration)) {
		return fmt.Errorf("generation %d is not one a starter can ask for; leave it out or set it to %d", in.Generation, RotateGeneration)
	}
	return nil
}

// StepTiming is how long one step took.
type StepTiming struct {
	Step     string        `json:"step"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
	// Attempts counts the durable attempts of an outstanding revoke or rollback; the
	// timing is the last one's.
	Attempts int `json:"attempts,omitempty"`
}

// RotateResult is what a rotation did. The workflow returns it on success and attaches it
// to its failure on any other outcome.
type RotateResult struct {
	SecretID secret.ID `json:"secretId"`
	Kind     string    `json:"kind"`
	Outcome  string    `json:"outcome"`
	// NewVersion is the version this rotation created, if it got that far.
	NewVersion *secret.Version `json:"newVersion,omitempty"`
	// PreviousVersion was current when the rotation began.
	PreviousVersion *secret.Version          `json:"previousVersion,omitempty"`
	Rollback        *rotation.RollbackResult `json:"rollback,omitempty"`
	Steps           []StepTiming             `json:"steps"`
	// ContainedAt is when a contain-mode rotation had every earlier version refused.
	ContainedAt time.Time `json:"containedAt,omitzero"`
	// EndedSessions are the uses the target showed of the versions a contain-mode rotation
	// revoked, just before it ended them (handles only): an incident skips the revoke
	// gate, and records whom it cut off instead.
	EndedSessions []rotators.Use `json:"endedSessions,omitempty"`
	// PromotedAt is when the new version became current.
	PromotedAt time.Time `json:"promotedAt,omitzero"`
	// RevokeGate is what the revoke gate saw and decided; nil when the secret's policy
	// does not wait or the rotation did not reach the gate.
	RevokeGate *RevokeGateStatus `json:"revokeGate,omitempty"`
	// Error is the failure that ended the rotation, without material.
	Error string `json:"error,omitempty"`
}

// RotateStatus is the answer to the status query: where the rotation stands now.
type RotateStatus struct {
	RotateResult
	Step       string    `json:"step"`
	StartedAt  time.Time `json:"startedAt"`
	GraceUntil time.Time `json:"graceUntil,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
	// Outstanding is set while a revoke or rollback keeps being retried.
	Outstanding *Outstanding `json:"outstanding,omitempty"`
}

// Outstanding describes a revoke or rollback that failed and is being retried durably.
type Outstanding struct {
	// What is outstanding: "revoke previous version N" or "rollback".
	What string `json:"what"`
	// Attempts made so far, the first included.
	Attempts int `json:"attempts"`
	// Since is when the first attempt failed.
	Since time.Time `json:"since"`
	// NextAttempt is when the next attempt starts (a retry-now signal starts it at once).
	NextAttempt time.Time `json:"nextAttempt"`
	// LastError is the latest attempt's error, without material.
	LastError string `json:"lastError"`
}

// States of the revoke gate (RevokeGateStatus.State). The first two hold while it waits;
// the others say how it ended.
const (
	// GateWaiting: checking until the previous version is idle or max_wait passes.
	GateWaiting = "waiting"
	// GateHeld: max_wait passed with uses open and the policy holds: still checking.
	GateHeld = "held"
	// GateIdle: the target showed the version unused; it was then revoked.
	GateIdle = "idle"
	// GateRevokedAnyway: max_wait passed with uses open and the policy revokes anyway.
	GateRevokedAnyway = "revoked_anyway"
	// GateRevokedByOperator: an operator sent revoke-now while the gate waited or held.
	GateRevokedByOperator = "revoked_by_operator"
	// GateStopped: an operator aborted or gave up, or the rotation was cancelled, while
	// the gate waited: the previous version was NOT revoked and still works.
	GateStopped = "stopped"
	// GateUnsupported: the kind could not tell whether the version is in use (the
	// inventory changed under the rotation); it was revoked after the grace period.
	GateUnsupported = "unsupported"
)

// RevokeGateStatus is the revoke gate of one rotation: what it waits for, what the target
// showed at the last check, and how it ended. Uses name callers by handles only.
type RevokeGateStatus struct {
	// State is one of the Gate constants.
	State string `json:"state"`
	// Since is when the gate began (the grace period's end); Until is when max_wait runs
	// out. HeldSince is when it began to hold, zero if it never did.
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	HeldSince time.Time `json:"heldSince,omitzero"`
	// Hold says what happens at Until with uses still open: hold (true) or revoke anyway.
	Hold bool `json:"hold,omitempty"`
	// Checks counts the questions asked of the target; LastCheck and NextCheck are when.
	Checks    int       `json:"checks"`
	LastCheck time.Time `json:"lastCheck,omitzero"`
	NextCheck time.Time `json:"nextCheck,omitzero"`
	// Checked says what the target looked at; Uses are the uses it showed at the last
	// check that worked (they stay when a later check fails: LastError says so).
	Checked   string         `json:"checked,omitempty"`
	Uses      []rotators.Use `json:"uses,omitempty"`
	LastError string         `json:"lastError,omitempty"`
	// IdleFrom is set when the last check found no use but the target reports uses late
	// (rotators.Usage.NotBefore): an idle answer counts from then on, and until then the
	// gate waits as for a use. Zero otherwise.
	IdleFrom time.Time `json:"idleFrom,omitzero"`
	// Ended is when the gate let the revoke proceed or stopped; zero while it waits.
	Ended time.Time `json:"ended,omitzero"`
}
