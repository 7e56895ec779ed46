package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<unix seconds>.<body>"; Verify checks it.
	HeaderSignature = "Keyturn-Signature"
	// HeaderEventID carries the event's ID, for deduplication.
	HeaderEventID = "Keyturn-Event-Id"
	// HeaderEventType carries the event's type, for receivers that dispatch on it.
	HeaderEventType = "Keyturn-Event-Type"
)

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock
// before Verify refuses it as a replay (or a badly wrong clock).
const DefaultTolerance = 5 * time.Minute

// MinKeyBytes is the shortest signing key Sign accepts: shorter keys can be guessed.
const MinKeyBytes = 16

// Verification errors, for errors.Is.
var (
	ErrNoSignature  = errors.New("no Keyturn-Signature header")
	ErrBadSignature = errors.New("malformed Keyturn-Signature header")
	ErrForged       = errors.New("signature does not match the body (wrong key, or the body was changed)")
	ErrStale        = errors.New("signature timestamp is outside the tolerance (a replay, or a wrong clock)")
	ErrNoKey        = errors.New("no key to verify with")
	ErrKeyTooShort  = fmt.Errorf("signing key is shorter than %d bytes", MinKeyBytes)
)

// Sign returns the Keyturn-Signature header value for body sent at t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver does: header is the Keyturn-Signature value,
// body the raw request body as received (before any JSON parsing), now the receiver's
// clock. It refuses a signature made with another key, a body changed after signing and
// a timestamp further than tolerance from now (0 means DefaultTolerance). Several v1
// values are accepted, any one matching, so a sender can sign with an old and a new key
// while receivers switch over.
func Verify(key []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(key) == 0 {
		return ErrNoKey
	}
	if strings.TrimSpace(header) == "" {
		return ErrNoSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return ErrBadSignature
			}
			sigs = append(sigs, sig)
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	want := mac(key, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrForged
	}
	// Checked after the MAC so the error says what is wrong: a genuine but old delivery
	// is stale, anything else that does not match is forged.
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
