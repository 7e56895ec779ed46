package secretstate

import (
	"encoding/json"
	"math"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// Observation is the state of an inventory's secrets at one moment. Its JSON form is part
// of `keyturn status -o json` (docs/status.md).
type Observation struct {
	// At is when the observation started; ages are counted to it, or, for the secrets
	// read after the observation stood aside (Yielded), to when it resumed.
	At time.Time `json:"at"`
	// Secrets are in inventory order.
	Secrets []Secret `json:"secrets"`
	// Incidents are the incident playbooks running now; empty with IncidentsError set when
	// Temporal could not be asked.
	Incidents      []Incident `json:"incidents"`
	IncidentsError string     `json:"incidentsError,omitempty"`
	// Yielded is how long the reads stood aside for urgent work (Observer.Gate).
	Yielded time.Duration `json:"-"`
}

// Secret is what is true now of one secret. A fact that could not be read is nil (or
// empty) with the matching error set; it is never guessed.
type Secret struct {
	ID    secret.ID `json:"secretId"`
	Kind  string    `json:"kind"`
	Owner string    `json:"owner,omitempty"`
	// Sensitivity and Consumers are as the inventory gives them (inventory.Secret): facts
	// about who depends on the secret, carried so status shows them beside its state.
	Sensitivity string     `json:"sensitivity,omitempty"`
	Consumers   []Consumer `json:"consumers,omitempty"`

	// Current is the current version (references and metadata, never material); nil when
	// the store holds none, or could not be read (StoreError).
	Current *secret.Version `json:"currentVersion,omitempty"`
	// Versions is how many versions the store holds, of any stage: 0 with no Current is a
	// secret never rotated (nor put), more is one whose current version is gone. 0 too
	// when the store could not be read.
	Versions int `json:"versions,omitempty"`
	// Age is how long ago the store recorded the current version; nil when there is none,
	// the store could not be read, or it records no creation time for it (AgeUnknown).
	Age *Seconds `json:"ageSeconds,omitempty"`
	// MaxAge is the maximum age the policy allows, nil without a policy; MaxAgeFrom says
	// where it comes from (config's Policy constants).
	MaxAge     *Seconds `json:"maxAgeSeconds,omitempty"`
	MaxAgeFrom string   `json:"maxAgeFrom,omitempty"`
	// Overdue: older than MaxAge, or no current version at all. Nil when the store could
	// not be read, or when the current version's age is unknown and a policy limits it.
	// OverdueReason says why a secret is overdue, or why that is unknown with a store
	// that could be read.
	Overdue       *bool  `json:"overdue,omitempty"`
	OverdueReason string `json:"overdueReason,omitempty"`
	StoreError    string `json:"storeError,omitempty"`

	// LastRotation is the latest run under rotate/<secret-id>; nil when none ever ran (in
	// the namespace's retention) or Temporal could not be asked (RotationError).
	LastRotation *Run `json:"lastRotation,omitempty"`
	// RevokesOutstanding counts the revokes (or rollbacks) outstanding: 0 or 1, as the
	// latest rotation decides it (RevokeState). Nil when unknown.
	RevokesOutstanding *int `json:"revokesOutstanding,omitempty"`
	// RevokeState says what is outstanding, when RevokesOutstanding is 1: RevokeRetrying,
	// RollbackRetrying or RevokeFailed.
	RevokeState string `json:"revokeState,omitempty"`
	// RevokeGate is the running rotation's revoke gate, as its status query answers,
	// when RevokeState is RevokeWaiting or RevokeHeld: the uses of the previous version
	// the target showed (handles only). Nil otherwise, or when the query failed.
	RevokeGate    *workflows.RevokeGateStatus `json:"revokeGate,omitempty"`
	RotationError string                      `json:"rotationError,omitempty"`

	// Schedules are the Temporal schedules the inventory gives the secret: its cron
	// schedule, and a certificate's renewal check.
	Schedules []Schedule `json:"schedules,omitempty"`
	// NextRun is when a schedule is next expected to rotate the secret; nil when none
	// will (no schedule, all paused or missing) or it is unknown (ScheduleError, or a
	// certificate's StoreError: when it is due for renewal is unknown).
	NextRun       *time.Time `json:"nextRun,omitempty"`
	ScheduleError string     `json:"scheduleError,omitempty"`
}

// Consumer is an application that reads the secret, as the inventory lists it.
type Consumer struct {
	Name string `json:"name"`
	// Refresh is how often it re-reads the secret (its cache TTL).
	Refresh Seconds `json:"refreshSeconds"`
}

// IsOverdue reports whether the secret is known to be overdue.
func (s Secret) IsOverdue() bool { return s.Overdue != nil && *s.Overdue }

// AgeUnknown reports whether the store was read and holds a current version, but no
// time it was recorded, so its age is unknown.
func (s Secret) AgeUnknown() bool { return s.Current != nil && s.Age == nil }

// Sources of a secret's facts, as ReadErrors names them; the sweep's error counter uses
// the same words (telemetry.SweepSource*).
const (
	SourceStore     = "store"
	SourceRotations = "rotations"
	SourceSchedules = "schedules"
)

// ReadError is one source of a secret's state that could not be read, and why.
type ReadError struct {
	Source string // SourceStore, SourceRotations or SourceSchedules
	Err    string
}

// ReadErrors lists the sources of the secret's state that could not be read, in the
// order they are read; empty when every read worked.
func (s Secret) ReadErrors() []ReadError {
	var out []ReadError
	for _, e := range []ReadError{{SourceStore, s.StoreError}, {SourceRotations, s.RotationError}, {SourceSchedules, s.ScheduleError}} {
		if e.Err != "" {
			out = append(out, e)
		}
	}
	return out
}

// Run is one rotation workflow run.
type Run struct {
	RunID string `json:"runId"`
	// Status is Temporal's, in words: running, completed, failed, cancelled, terminated,
	// timed out.
	Status string `json:"status"`
	// Outcome is the KeyturnOutcome search attribute: how it ended, or an outstanding
	// state while it keeps trying.
	Outcome string `json:"outcome,omitempty"`
	// Step is KeyturnStep: the step it waits in (grace, revoke_gate, purge), running
	// while it runs a quick step (the status query names which), or where it ended.
	Step    string     `json:"step"`
	Started time.Time  `json:"started"`
	Closed  *time.Time `json:"closed,omitempty"`
}

// Result is the run's outcome in one word or phrase, as status tables show it: the
// outcome, else Temporal's status. An outstanding state of a run that no longer runs
// (terminated by an incident, say) is history, not the present.
func (r Run) Result() string {
	switch {
	case r.Outcome == "":
		return r.Status
	case r.Status != StatusRunning && workflows.IsOutstanding(r.Outcome):
		return r.Status + " (was " + r.Outcome + ")"
	}
	return r.Outcome
}

// What a secret's latest rotation leaves outstanding (Secret.RevokeState).
const (
	// RevokeRetrying: the rotation runs and keeps retrying a revoke (revoke_outstanding).
	RevokeRetrying = "retrying"
	// RollbackRetrying: the rotation runs and keeps retrying a rollback
	// (rollback_outstanding).
	RollbackRetrying = "rollback"
	// RevokeFailed: the rotation ended revoke_failed (an operator gave up, it was
	// cancelled while revoking, or an incident's rotation could not revoke), or it was
	// ended from outside (terminated, timed out) while still retrying a revoke or a
	// rollback: a credential that should be revoked may still work, and nothing retries it.
	RevokeFailed = "failed"
	// RevokeWaiting: the rotation's revoke gate waits for the previous version to be
	// unused (step revoke_gate, within max_wait). Intended, and not alerted on.
	RevokeWaiting = "waiting"
	// RevokeHeld: the revoke gate held the revoke after max_wait with the previous version
	// still in use (revoke_held); it keeps checking. KeyturnRevokeHeld alerts on it.
	RevokeHeld = "held"
)

// RevokeStates lists every RevokeState, as the keyturn_revokes_outstanding gauge's state
// label takes them.
var RevokeStates = []string{RevokeRetrying, RollbackRetrying, RevokeFailed, RevokeWaiting, RevokeHeld}

// RevokeState is what the run, as the secret's latest, leaves outstanding: a revoke or
// rollback it still retries while it runs, or a revoke it ended without ("" for none).
// A run ended from outside while it retried (terminated) retries no more, so what it was
// retrying is as failed as a revoke_failed: nobody else will do it.
func (r Run) RevokeState() string {
	switch {
	case r.Outcome == workflows.OutcomeRevokeFailed:
		return RevokeFailed
	case r.Status != StatusRunning && workflows.IsOutstanding(r.Outcome):
		return RevokeFailed
	case r.Status != StatusRunning:
		return ""
	case r.Outcome == workflows.OutcomeRevokeOutstanding:
		return RevokeRetrying
	case r.Outcome == workflows.OutcomeRollbackOutstanding:
		return RollbackRetrying
	case r.Outcome == workflows.OutcomeRevokeHeld:
		return RevokeHeld
	case r.Step == workflows.StepRevokeGate:
		return RevokeWaiting
	}
	return ""
}

// Schedule is one of a secret's Temporal schedules as it stands.
type Schedule struct {
	ID string `json:"scheduleId"`
	// RenewalCheck marks a certificate's hourly renewal check.
	RenewalCheck bool `json:"renewalCheck,omitempty"`
	// Missing: the inventory asks for the schedule and Temporal has none (`keyturn apply`
	// has not run since it was added).
	Missing bool `json:"missing,omitempty"`
	Paused  bool `json:"paused,omitempty"`
	// NextRun is Temporal's next action time; nil when paused, missing or done.
	NextRun *time.Time `json:"nextRun,omitempty"`
}

// Incident is a running incident playbook.
type Incident struct {
	ID      string    `json:"incidentId"`
	RunID   string    `json:"runId"`
	Started time.Time `json:"started"`
}

// Seconds is a duration that reads and writes JSON as a number of seconds, with
// millisecond precision, as every duration in `keyturn status -o json` does.
type Seconds time.Duration

// Duration is s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) }

// MarshalJSON writes the seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(math.Round(time.Duration(s).Seconds()*1000) / 1000)
}

// UnmarshalJSON reads seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(time.Duration(f * float64(time.Second)))
	return nil
}

func secondsPtr(d time.Duration) *Seconds {
	s := Seconds(d)
	return &s
}
