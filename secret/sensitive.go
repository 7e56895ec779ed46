package secret

import (
	"errors"
	"fmt"
	"log/slog"
)

// Redacted is what a Sensitive value prints as, wherever it is printed.
const Redacted = "[REDACTED]"

// ErrSensitiveMarshal is returned when something tries to encode a Sensitive value. Seeing
// it means secret material was about to enter a payload, a log or a file in the clear.
var ErrSensitiveMarshal = errors.New("secret: refusing to marshal sensitive value")

// Sensitive is a piece of credential material: a password, a private key, an API secret.
// It prints as [REDACTED] through fmt (every verb), slog and String, and refuses JSON and
// text marshalling so it breaks loudly if it ever reaches a payload. Code that really
// needs the bytes calls Reveal, which is easy to grep for.
type Sensitive struct {
	value string
}

// NewSensitive wraps material.
func NewSensitive(value string) Sensitive { return Sensitive{value: value} }

// Reveal returns the material. Call it only at the edge where the material is used: a
// login, an ALTER ROLE, an encrypted write to a store.
func (s Sensitive) Reveal() string { return s.value }

// IsZero reports whether no material is held.
func (s Sensitive) IsZero() bool { return s.value == "" }

// Equal compares two values without revealing either.
func (s Sensitive) Equal(o Sensitive) bool { return s.value == o.value }

// String implements fmt.Stringer.
func (s Sensitive) String() string { return Redacted }

// GoString implements fmt.GoStringer so %#v does not print the field.
func (s Sensitive) GoString() string { return Redacted }

// Format implements fmt.Formatter so every verb, including %x and %q, prints [REDACTED].
func (s Sensitive) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Sensitive) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON refuses: sensitive material never becomes JSON.
func (s Sensitive) MarshalJSON() ([]byte, error) { return nil, ErrSensitiveMarshal }

// MarshalText refuses for the same reason (it covers YAML and text encoders).
func (s Sensitive) MarshalText() ([]byte, error) { return nil, ErrSensitiveMarshal }

// Material is the secret part of one credential version, by field name ("password",
// "private_key", ...). Non-secret parts (a user name, an access key ID) belong in a
// Version's Metadata instead.
type Material map[string]Sensitive

// Get returns the named field, or the zero Sensitive.
func (m Material) Get(field string) Sensitive { return m[field] }
