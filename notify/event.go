package notify

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

// Type says what happened. The routable types are the inventory's event names, which
// internal/inventory owns because routes name them.
type Type string

// Event types.
const (
	RotationFailed     Type = inventory.EventRotationFailed
	RotationRolledBack Type = inventory.EventRotationRolledBack
	RevokeOutstanding  Type = inventory.EventRevokeOutstanding
	RevokeHeld         Type = inventory.EventRevokeHeld
	RevokeReleased     Type = inventory.EventRevokeReleased
	SecretOverdue      Type = inventory.EventSecretOverdue
	IncidentStarted    Type = inventory.EventIncidentStarted
	IncidentContained  Type = inventory.EventIncidentContained
	IncidentFinished   Type = inventory.EventIncidentFinished
	// Test is the sample `keyturn notify test` sends; no route selects it.
	Test Type = "test"
)

// Types lists the routable event types.
func Types() []Type {
	out := make([]Type, len(inventory.NotifyEvents))
	for i, name := range inventory.NotifyEvents {
		out[i] = Type(name)
	}
	return out
}

// Event is one thing worth telling people about. Every field is a reference or a label;
// none can hold material (a test walks the type to keep it that way), and ErrorMessage is
// set through ErrorText.
type Event struct {
	// ID identifies the event for deduplication; Seal derives it when it is empty.
	ID string `json:"id"`
	// Type says what happened.
	Type Type `json:"type"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// SecretID is the secret the event is about; empty for an incident-wide event.
	SecretID secret.ID `json:"secret_id,omitempty"`
	// Kind is the secret's kind (postgres, awsiam, ...).
	Kind string `json:"kind,omitempty"`
	// Tags are the secret's tags.
	Tags []string `json:"tags,omitempty"`
	// Owner is the team or person responsible for the secret, when known.
	Owner string `json:"owner,omitempty"`
	// Overdue says how an overdue secret stands, in secret_overdue events only.
	Overdue *Overdue `json:"overdue,omitempty"`
	// RevokeGate says what the revoke gate saw, in revoke_held and revoke_released
	// events only.
	RevokeGate *RevokeGate `json:"revoke_gate,omitempty"`
	// Step is the rotation step the event comes from (create, test, promote, revoke).
	Step string `json:"step,omitempty"`
	// Outcome is the rotation's or incident's outcome (failed, rolled_back, ...).
	Outcome string `json:"outcome,omitempty"`
	// ErrorClass is a stable name for the kind of failure (credential_rejected, ...).
	ErrorClass string `json:"error_class,omitempty"`
	// ErrorMessage is the failure's text, passed through ErrorText.
	ErrorMessage string `json:"error_message,omitempty"`
	// WorkflowID and RunID name the Temporal execution the event comes from.
	WorkflowID string `json:"workflow_id,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	// IncidentID names the incident, for incident events and rotations it started.
	IncidentID string `json:"incident_id,omitempty"`
	// Incident describes the incident, in incident-wide events only.
	Incident *Incident `json:"incident,omitempty"`
}

// DerivedID is the ID of the event computed from what happened: its type, workflow and
// run, step, outcome, secret and incident. Time is left out on purpose: a retried send
// or activity happens later but reports the same thing, and must carry the same ID.
func (e Event) DerivedID() string {
	return deriveID(string(e.Type), e.WorkflowID, e.RunID, e.Step, e.Outcome, string(e.SecretID), e.IncidentID)
}

// deriveID hashes what identifies an event into its ID.
func deriveID(parts ...string) string {
	h := sha256.New()
	for _, part := range parts {
		// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Seal returns the event with its ID derived when it has none, its time in UTC and the
// operator's words of an incident cleaned and capped.
func (e Event) Seal() Event {
	if e.ID == "" {
		e.ID = e.DerivedID()
	}
	e.Time = e.Time.UTC()
	if e.Incident != nil {
		i := e.Incident.sealed()
		e.Incident = &i
	}
	if e.RevokeGate != nil {
		g := e.RevokeGate.sealed()
		e.RevokeGate = &g
	}
	return e
}

// maxErrorRunes caps an error message in an event: enough to act on, short enough for a
// chat message, and a bound on what a receiver is handed.
const maxErrorRunes = 500

// ErrorText is the one way error text enters an event: err's message with every value in
// known replaced by [REDACTED], then cleaned like the inventory's problem messages (no
// escape sequences or control characters) and capped. Errors in Keyturn are
// material-free by design; the caller passes whatever material it holds (a new password,
// an admin key) as a second wall, never the only one.
func ErrorText(err error, known ...secret.Sensitive) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, k := range known {
		if v := k.Reveal(); v != "" {
			msg = strings.ReplaceAll(msg, v, secret.Redacted)
		}
	}
	return inventory.Displayable(msg, maxErrorRunes)
}

// Sample is the event `keyturn notify test` sends: type test, a fresh ID each time (so a
// receiver that deduplicates still shows every test), no material and no real secret.
func Sample(now time.Time) Event {
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce) // never fails (crypto/rand panics rather than return an error)
	return Event{
		Type:       Test,
		Time:       now,
		SecretID:   "example/notify-test",
		Kind:       "test",
		Step:       "test",
		Outcome:    "test",
		WorkflowID: "notify-test",
		RunID:      hex.EncodeToString(nonce),
	}.Seal()
}
