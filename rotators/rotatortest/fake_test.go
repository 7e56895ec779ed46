package rotatortest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// fakeTarget is an in-memory target holding one key per version, the way an API-key
// service does: a handle per version, so Keep never shares a handle.
type fakeTarget struct {
	mu   sync.Mutex
	keys map[string]string // handle -> accepted password
}

type fakeRotator struct{ target *fakeTarget }

var _ rotators.Rotator = (*fakeRotator)(nil)

func (f *fakeRotator) Generate(_ context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	return rotators.Generated{
		Material: secret.Material{"password": secret.NewSensitive(rand.Text())},
		Metadata: map[string]string{"handle": "key-" + string(req.Token)},
	}, nil
}

func (f *fakeRotator) Apply(_ context.Context, req rotators.ApplyRequest) error {
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	f.target.keys[req.Version.Metadata["handle"]] = req.Material.Get("password").Reveal()
	return nil
}

func (f *fakeRotator) Test(_ context.Context, req rotators.TestRequest) error {
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	got, ok := f.target.keys[req.Version.Metadata["handle"]]
	if !ok || got != req.Material.Get("password").Reveal() {
		return fmt.Errorf("log in with key %q: %w", req.Version.Metadata["handle"], rotators.ErrCredentialRejected)
	}
	return nil
}

func (f *fakeRotator) Revoke(_ context.Context, req rotators.RevokeRequest) error {
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	delete(f.target.keys, req.Version.Metadata["handle"])
	return nil
}

// TestRunOnFake runs the suite on a rotator that keeps the contract, so a change to the
// suite that fails every rotator shows up here first.
func TestRunOnFake(t *testing.T) {
	var rounds int
	Run(t, Harness{
		Name: "fake",
		New: func(t *testing.T) rotators.Rotator {
			return &fakeRotator{target: &fakeTarget{keys: map[string]string{}}}
		},
		AfterRotation: func(t *testing.T, prev, next secret.Version) {
			rounds++
			if prev.Token == next.Token {
				t.Errorf("round %d: prev and next share token %s", rounds, prev.Token)
			}
		},
	})
	if rounds != 3 {
		t.Errorf("AfterRotation ran %d times, want 3", rounds)
	}
}
