package secret

import (
	"fmt"
	"regexp"
	"time"
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
		return fmt.Errorf("secret id %q is longer than 200 characters", string(id))
	}
	if !idPattern.MatchString(string(id)) {
		return fmt.Errorf("secret id %q is not path-like: use lower-case segments of a-z, 0-9, '.', '_' and '-' separated by '/', e.g. prod/orders-db/app", string(id))
	}
	return nil
}

// VersionToken identifies one version of a secret across every system that holds it (the
// store, the target's metadata, the workflow). Keyturn uses the rotation's workflow ID and
// run ID, so a retried step finds the version it made before instead of making another.
type VersionToken string

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
