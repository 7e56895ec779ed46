package secret

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ID names a managed secret, path-like: "prod/orders-db/app".
type ID string

var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$`)

// Validate checks that the ID is path-like: lower-case segments of letters, digits, '.',
// '_' and '-', separated by single slashes, with no leading or trailing slash.
func (id ID) Validate() error {
	if id == "" {
		return fmt.Errorf("secret id is empty")
	}
	if len(id) > 200 {
		return fmt.Errorf("secret id %s is longer than 200 characters", id.shown())
	}
	if !idPattern.MatchString(string(id)) {
		return fmt.Errorf("secret id %s is not path-like: use lower-case segments of a-z, 0-9, '.', '_' and '-' separated by '/', e.g. prod/orders-db/app", id.shown())
	}
	return nil
}

// shown is an ID that failed validation as a message may repeat it: Go-quoted (control
// characters and invalid bytes escaped) and cut to 64 bytes, so a hostile or pasted value
// is never echoed raw or whole.
func (id ID) shown() string {
	if len(id) > 64 {
		return strconv.Quote(string(id[:64])) + "..."
	}
	return strconv.Quote(string(id))
}

// VersionToken identifies one version of a secret across every system that holds it (the
// store, the target's metadata, the workflow). Keyturn uses the rotation's workflow ID and
// run ID, so a retried step finds the version it made before instead of making another.
type VersionToken string

// MaxTokenLen bounds version tokens. Keyturn's are a workflow ID and a run ID (about 100
// bytes); the bound leaves room for every store's own limits (Vault's custom metadata
// values are the tightest).
const MaxTokenLen = 400

// Validate checks that the token is non-empty, at most MaxTokenLen bytes and printable
// UTF-8: stores keep it in JSON (which would silently rewrite invalid UTF-8) and use it as
// authenticated data, so a token that does not survive a round trip could never be read
// back.
func (t VersionToken) Validate() error {
	switch {
	case t == "":
		return errors.New("version token is empty")
	case len(t) > MaxTokenLen:
		return fmt.Errorf("version token is longer than %d bytes", MaxTokenLen)
	case !utf8.ValidString(string(t)):
		return errors.New("version token is not valid UTF-8")
	case strings.IndexFunc(string(t), func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errors.New("version token holds a non-printable character")
	}
	return nil
}

// Stage is where a version stands in its secret's life.
type Stage string

// The three stages a store keeps. Consumers read only StageCurrent.
const (
	StagePending  Stage = "pending"
	StageCurrent  Stage = "current"
	StagePrevious Stage = "previous"
)

// Valid reports whether s is one of the three stages.
func (s Stage) Valid() bool {
	return s == StagePending || s == StageCurrent || s == StagePrevious
}

// Version describes one version of a secret without its material: safe to log, to return
// from an activity and to show in the Web UI.
type Version struct {
	SecretID ID           `json:"secretId"`
	Token    VersionToken `json:"token"`
	// Number counts versions of this secret in the store, from 1.
	Number int `json:"number"`
	// Stages held by this version; empty once a version has been superseded twice.
	Stages    []Stage   `json:"stages,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Metadata holds non-secret handles the rotator needs later: a role name, an access key
	// ID, a certificate serial. Never material.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Has reports whether the version holds stage s.
func (v Version) Has(s Stage) bool {
	for _, got := range v.Stages {
		if got == s {
			return true
		}
	}
	return false
}
