package rotation_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// fakeTarget is an in-memory target with login roles and passwords, enough to check the
// sequencing of the rotation steps quickly. The real Postgres rotator is tested against a
// real server in rotators/postgres and tests/.
type fakeTarget struct {
	mu      sync.Mutex
	logins  map[string]string // role -> password; absent means NOLOGIN
	applies int
	shared  bool // single strategy: every version uses role "app"
	// checkFails makes every login that works fail the check query, as when the
	// inventory's check needs a privilege the group role lacks.
	checkFails bool
	next    int
}

var _ rotators.Rotator = (*fakeTarget)(nil)

func newFakeTarget(shared bool) *fakeTarget {
	return &fakeTarget{logins: map[string]string{}, shared: shared}
}

func (f *fakeTarget) Generate(_ context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	role := "app"
	if !f.shared {
		role = "app_a"
		if req.Current != nil && req.Current.Metadata["role"] == "app_a" {
			role = "app_b"
		}
	}
	return rotators.Generated{
		Material: secret.Material{"password": secret.NewSensitive(fmt.Sprintf("pw-%d", f.next))},
		Metadata: map[string]string{"role": role},
	}, nil
}

func (f *fakeTarget) Apply(_ context.Context, req rotators.ApplyRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	f.logins[req.Version.Metadata["role"]] = req.Material.Get("password").Reveal()
	return nil
}

func (f *fakeTarget) Test(_ context.Context, req rotators.TestRequest) error {
	if !f.works(req.Version.Metadata["role"], req.Material.Get("password")) {
		return fmt.Errorf("login as %s: %w", req.Version.Metadata["role"], rotators.ErrCredentialRejected)
	}
	if f.checkFails {
		return fmt.Errorf("check query: %w", rotators.ErrCheckFailed)
	}
	return nil
}

func (f *fakeTarget) Revoke(_ context.Context, req rotators.RevokeRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := req.Version.Metadata["role"]
	if req.Keep != nil && req.Keep.Metadata["role"] == role {
		return nil
	}
	delete(f.logins, role)
	return nil
}

func (f *fakeTarget) works(role string, password secret.Sensitive) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	pw, ok := f.logins[role]
	return ok && pw == password.Reveal()
}
