// Package fake is an in-memory rotators.Rotator for fast tests of the layers above the
// rotators (rotation steps, activities, workflows) and of the conformance suite itself.
// It models a target with login roles and passwords, like Postgres: in Twins mode each
// rotation re-keys the inactive one of two roles, in Shared mode every version uses one
// role. Real targets are tested against real servers; this is in addition, never instead.
package fake

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Mode picks how versions map to roles.
type Mode int

const (
	// Twins alternates between roles "app_a" and "app_b".
	Twins Mode = iota
	// Shared gives every version role "app" (a new password each time).
	Shared
)

// Rotator is the fake. Its exported fields inject faults; set them before use or under
// the test's own synchronisation.
type Rotator struct {
	mode Mode

	mu      sync.Mutex
	logins  map[string]string // role -> accepted password; absent means NOLOGIN
	applies int

	// ApplyFailures makes the next N Apply calls fail after doing nothing, as when the
	// target is unreachable.
	ApplyFailures int
	// CheckFails makes Test fail with ErrCheckFailed for credentials that log in.
	CheckFails bool
}

var _ rotators.Rotator = (*Rotator)(nil)

// New returns a fake target in the given mode.
func New(mode Mode) *Rotator { return &Rotator{mode: mode, logins: map[string]string{}} }

// Generate picks the role and makes a random password.
func (f *Rotator) Generate(_ context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	role := "app"
	if f.mode == Twins {
		role = "app_a"
		if req.Current != nil && req.Current.Metadata["role"] == "app_a" {
			role = "app_b"
		}
	}
	return rotators.Generated{
		Material: secret.Material{"password": secret.NewSensitive(rand.Text())},
		Metadata: map[string]string{"role": role},
	}, nil
}

// Apply sets the role's password, unless an injected failure is pending.
func (f *Rotator) Apply(_ context.Context, req rotators.ApplyRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.ApplyFailures > 0 {
		f.ApplyFailures--
		return fmt.Errorf("apply to fake target: connection refused")
	}
	f.logins[req.Version.Metadata["role"]] = req.Material.Get("password").Reveal()
	return nil
}

// Test logs in, then runs the (fake) check.
func (f *Rotator) Test(_ context.Context, req rotators.TestRequest) error {
	role := req.Version.Metadata["role"]
	if !f.Works(role, req.Material.Get("password")) {
		return fmt.Errorf("log in as %s: %w", role, rotators.ErrCredentialRejected)
	}
	if f.CheckFails {
		return fmt.Errorf("check as %s: %w", role, rotators.ErrCheckFailed)
	}
	return nil
}

// Revoke disables the role unless Keep uses it too.
func (f *Rotator) Revoke(_ context.Context, req rotators.RevokeRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := req.Version.Metadata["role"]
	if req.Keep != nil && req.Keep.Metadata["role"] == role {
		return nil
	}
	delete(f.logins, role)
	return nil
}

// Works reports whether the role logs in with the password.
func (f *Rotator) Works(role string, password secret.Sensitive) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	pw, ok := f.logins[role]
	return ok && pw == password.Reveal()
}

// SetPassword changes a role's password behind Keyturn's back.
func (f *Rotator) SetPassword(role, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins[role] = password
}

// Applies counts Apply calls, failed ones included.
func (f *Rotator) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}
