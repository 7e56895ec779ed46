package notify

import (
	"fmt"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
)

// maxWordsRunes caps the operator's words (reason, operator) in an incident event.
const maxWordsRunes = 200

// Incident is what an incident-wide event (IncidentStarted, IncidentContained,
// IncidentFinished) says about its incident: the operator's words and counts of secrets,
// never a secret. Each count is as of the event: in incident_started every count is 0.
type Incident struct {
	// Mode is the incident's mode: contain or rotate.
	Mode string `json:"mode"`
	// Selector is the scope as the operator selected it (prefix=prod/, tag=pci, ...).
	Selector string `json:"selector,omitempty"`
	// Reason and Operator are the operator's words, cleaned and capped when the event is
	// sealed. They are sent as given: a reason must never quote a credential.
	Reason   string `json:"reason,omitempty"`
	Operator string `json:"operator,omitempty"`
	// Secrets is the size of the scope the worker resolved.
	Secrets int `json:"secrets"`
	// Contained is how many secrets had every earlier credential refused by their target
	// (contain mode; always 0 in rotate mode, which has no containment step).
	Contained int `json:"contained"`
	// NotContained is how many secrets of a contain-mode incident were not contained when
	// the event was sent: in incident_contained and incident_finished, those whose
	// containment failed (or, after an incident that stopped early, never ran). 0 in
	// incident_started and in rotate mode.
	NotContained int `json:"not_contained"`
	// Rotated is how many secrets have a new credential, tested and promoted.
	Rotated int `json:"rotated"`
	// Failed is how many secrets' work ended with an error.
	Failed int `json:"failed"`
	// NeedsHuman is how many secrets ended in a state the incident cannot finish by
	// itself (a failure, or any outcome but rotated); the incident's report names them.
	NeedsHuman int `json:"needs_human"`
	// ContainedSeconds is how long after the incident's start the last contained secret
	// was contained; 0 when none was.
	ContainedSeconds float64 `json:"contained_seconds,omitempty"`
}

// sealed returns the incident with the operator's words cleaned and capped like the
// inventory's problem messages: no escape sequences or control characters reach a chat.
func (i Incident) sealed() Incident {
	i.Reason = inventory.Displayable(i.Reason, maxWordsRunes)
	i.Operator = inventory.Displayable(i.Operator, maxWordsRunes)
	i.Selector = inventory.Displayable(i.Selector, maxWordsRunes)
	return i
}

// lines are the incident's details for a chat message, label and value.
func (i Incident) lines() [][2]string {
	out := [][2]string{{"Mode", i.Mode}, {"Scope", fmt.Sprintf("%s (%d secrets)", i.Selector, i.Secrets)}}
	counts := fmt.Sprintf("%d rotated, %d failed, %d need a human", i.Rotated, i.Failed, i.NeedsHuman)
	if i.Contained+i.NotContained > 0 { // contain mode, once containment began
		counts = fmt.Sprintf("%d contained, %d not contained, %s", i.Contained, i.NotContained, counts)
	}
	out = append(out, [2]string{"Secrets", counts})
	if i.ContainedSeconds > 0 {
		took := time.Duration(i.ContainedSeconds * float64(time.Second)).Round(time.Millisecond)
		out = append(out, [2]string{"Contained after", took.String()})
	}
	return append(out, [2]string{"Reason", i.Reason}, [2]string{"Operator", i.Operator})
}
