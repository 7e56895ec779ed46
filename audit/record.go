package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// FormatVersion is the record format this package writes and hashes.
const FormatVersion = 1

// Event names. A step's events are "step.started", "step.succeeded" and "step.failed";
// the step itself (create, test, promote, revoke, purge, rollback, contain, ...) is in
// Record.Step.
const (
	EventStepStarted   = "step.started"
	EventStepSucceeded = "step.succeeded"
	EventStepFailed    = "step.failed"
	// EventRotationStarted and EventRotationFinished open and close one rotation; the
	// finished record carries the rotation's outcome.
	EventRotationStarted  = "rotation.started"
	EventRotationFinished = "rotation.finished"
	// EventOperator is an operator's action on a running rotation (abort, skip-grace,
	// retry-now, give-up, revoke-now); the action is in Record.Step.
	EventOperator = "operator.action"
	// Schedule events, written by the command that changed the schedule or the incident
	// that paused or resumed it.
	EventScheduleApplied = "schedule.applied"
	EventSchedulePaused  = "schedule.paused"
	EventScheduleResumed = "schedule.resumed"
	// EventPut is `keyturn put`: an operator recorded a version by hand.
	EventPut = "secret.put"
	// Incident events, in the incident's chain. incident.started carries the scope as
	// selected and its size; every secret's own records name the incident.
	EventIncidentStarted   = "incident.started"
	EventIncidentContained = "incident.contained"
	EventIncidentFinished  = "incident.finished"
)

// Actor types: who or what made the change.
const (
	ActorOperator = "operator"
	ActorSchedule = "schedule"
	ActorIncident = "incident"
	// ActorWorker is the worker acting on its own (a sweep, a rollback nobody asked for).
	ActorWorker = "worker"
)

// Actor is who or what made a change: an operator's identity, a schedule, an incident.
type Actor struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// String is "type:name", the form `keyturn audit show --actor` matches.
func (a Actor) String() string {
	if a.Name == "" {
		return a.Type
	}
	return a.Type + ":" + a.Name
}

// Record is one audit record. The fields up to Handles describe the event; Chain, Seq,
// Prev and Hash place it in its chain and are set by the sink when it is appended.
type Record struct {
	// V is the format version (FormatVersion).
	V int `json:"v"`
	// ID is the event's identity (see EventID): a second append with the same ID stores
	// nothing and returns the first.
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Event string    `json:"event"`
	// Step is the rotation step (create, test, ...), or the operator's action.
	Step string `json:"step,omitempty"`
	// Outcome is the rotation's outcome (rotated, rolled_back, ...) on rotation.finished.
	Outcome string `json:"outcome,omitempty"`
	// ErrorClass is the error's type as retry policies match it (KeyturnTargetUnavailable,
	// ...); Error is its material-free message as the workflow shows it.
	ErrorClass string `json:"errorClass,omitempty"`
	Error      string `json:"error,omitempty"`
	Actor      Actor  `json:"actor"`
	Reason     string `json:"reason,omitempty"`
	IncidentID string `json:"incidentId,omitempty"`

	SecretID      secret.ID           `json:"secretId,omitempty"`
	Kind          string              `json:"kind,omitempty"`
	Owner         string              `json:"owner,omitempty"`
	VersionToken  secret.VersionToken `json:"versionToken,omitempty"`
	VersionNumber int                 `json:"versionNumber,omitempty"`
	// Handles are non-secret handles of the version: a role name, an access key ID, a
	// certificate serial.
	Handles map[string]string `json:"handles,omitempty"`
	// Counts are an incident's numbers: secrets in scope, contained, rotated, failed.
	Counts map[string]int `json:"counts,omitempty"`

	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
	// Attempt is the activity attempt that wrote a step.failed record.
	Attempt int32 `json:"attempt,omitempty"`

	Chain string `json:"chain"`
	Seq   int64  `json:"seq"`
	// Prev is the hash of the chain's previous record, "" for the first.
	Prev string `json:"prev"`
	// Hash is the SHA-256, hex, of the record's canonical encoding with Hash empty.
	Hash string `json:"hash"`
}

// EventID derives a record's identity from the event's own identity, e.g. the workflow
// ID, run ID, activity ID and event. The same event always gets the same ID.
func EventID(parts ...string) string { return strings.Join(parts, "|") }

// ChainOf is the chain a record belongs to: its secret's, else its incident's.
func ChainOf(r Record) string {
	switch {
	case r.SecretID != "":
		return "secret/" + string(r.SecretID)
	case r.IncidentID != "":
		return "incident/" + r.IncidentID
	default:
		return "keyturn"
	}
}

// ComputeHash returns the hash r should carry: SHA-256 over the canonical encoding of r
// with Hash empty. Prev is part of it, which is what chains the records.
func (r Record) ComputeHash() string {
	r.Hash = ""
	b, err := r.canonical()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical is the record's JSON: struct fields in declaration order, map keys sorted,
// time in UTC with nanoseconds, so encoding a decoded record gives the same bytes.
func (r Record) canonical() ([]byte, error) {
	r.Time = r.Time.UTC()
	return json.Marshal(r)
}

// Seal places r after prev in chain (prev is "" and seq 1 for a chain's first record) and
// sets its hash. Sinks call it under their per-chain serialisation.
func (r Record) Seal(chain string, seq int64, prev string) Record {
	r.V = FormatVersion
	r.Chain, r.Seq, r.Prev = chain, seq, prev
	r.Time = r.Time.UTC()
	r.Hash = r.ComputeHash()
	return r
}

// Check reports what makes r unfit to append: no ID, no event, no time.
func (r Record) Check() error {
	switch {
	case r.ID == "":
		return fmt.Errorf("audit record for %s has no ID", r.Event)
	case r.Event == "":
		return fmt.Errorf("audit record %s has no event", r.ID)
	case r.Time.IsZero():
		return fmt.Errorf("audit record %s has no time", r.ID)
	}
	return nil
}

// MarshalLine is the record as one JSON line (with its hash), as sinks store it.
func (r Record) MarshalLine() ([]byte, error) {
	b, err := r.canonical()
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
