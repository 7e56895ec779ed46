package notify

import (
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

// maxReasonRunes caps the words of an overdue event's reason.
const maxReasonRunes = 200

// Overdue is what a secret_overdue event says about the secret: its current version (a
// reference) and how old it is against its policy. Never material.
type Overdue struct {
	// Version is the current version's token, and VersionNumber its number in the store;
	// empty and 0 when the secret has no current version (never rotated).
	Version       secret.VersionToken `json:"version,omitempty"`
	VersionNumber int                 `json:"version_number,omitempty"`
	// AgeSeconds is the current version's age; 0 without one. MaxAgeSeconds is the
	// policy's maximum, 0 without a policy; MaxAgeFrom says where it comes from
	// (max_age, defaults.max_age, schedule, certificate).
	AgeSeconds    float64 `json:"age_seconds,omitempty"`
	MaxAgeSeconds float64 `json:"max_age_seconds,omitempty"`
	MaxAgeFrom    string  `json:"max_age_from,omitempty"`
	// Reason says why the secret is overdue, in words.
	Reason string `json:"reason"`
}

// OverdueEvent is the secret_overdue event for a secret found overdue at at. Its ID is
// derived from the event type, the secret and its current version's token ("none"
// without one), not from the time: every sweep of every worker that finds the secret
// overdue with this version sends the same ID, so a receiver drops the repeats, and a
// new version that is overdue again (or a first one) is a new event.
func OverdueEvent(at time.Time, id secret.ID, kind, owner string, tags []string, o Overdue) Event {
	version := string(o.Version)
	if version == "" {
		version = "none"
	}
	o.Reason = inventory.Displayable(o.Reason, maxReasonRunes)
	return Event{
		ID:   deriveID(string(SecretOverdue), string(id), version),
		Type: SecretOverdue, Time: at, SecretID: id, Kind: kind, Owner: owner, Tags: tags,
		Outcome: "overdue", Overdue: &o,
	}.Seal()
}
