package rotatortest

import (
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
)

// TestRunOnFake runs the suite on the fake rotator in both modes, so a change to the suite
// that fails every rotator shows up here first.
func TestRunOnFake(t *testing.T) {
	for name, mode := range map[string]fake.Mode{"twins": fake.Twins, "shared": fake.Shared} {
		t.Run(name, func(t *testing.T) {
			var rounds int
			Run(t, Harness{
				Name: "fake-" + name,
				New:  func(t *testing.T) rotators.Rotator { return fake.New(mode) },
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
		})
	}
}

// TestRunOnMintingFake runs the suite on the minting fake, the path of kinds whose target
// makes the credential.
func TestRunOnMintingFake(t *testing.T) {
	Run(t, Harness{
		Name:         "fake-minting",
		New:          func(t *testing.T) rotators.Rotator { return fake.NewMinting() },
		PublicFields: []string{"key_id"},
	})
}
