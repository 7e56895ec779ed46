package rotatortest

import (
	"context"
	"slices"
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

// pointed passes the minting fake's Mint through a kill point before and after, as a
// real target's calls do.
type pointed struct {
	*fake.Minting
	point func(string)
}

func (p pointed) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	p.point("before mint")
	g, err := p.Minting.Mint(ctx, req)
	p.point("after mint")
	return g, err
}

// TestRunKillsOnMintingFake runs the kill harness on the minting fake: the fake finds a
// killed attempt's key by its token, so no rotation may end with a stray key.
func TestRunKillsOnMintingFake(t *testing.T) {
	target := fake.NewMinting()
	rep := RunKills(t, KillHarness{
		New:    func(t *testing.T, point func(string)) rotators.Rotator { return pointed{target, point} },
		Live:   func(t *testing.T) []string { return target.Handles() },
		Handle: func(v secret.Version) string { return v.Metadata["key_id"] },
	})
	if rep.Kills < 20 || len(rep.AfterRetry) == 0 {
		t.Fatalf("report %+v: want at least 20 kills", rep)
	}
	// Some kill must have struck after the target minted and before the store had it,
	// or the harness proves nothing about orphans.
	if !slices.ContainsFunc(rep.AfterKill, func(n int) bool { return n > 1 }) {
		t.Errorf("no kill left a credential behind for the retry to remove: %v", rep.AfterKill)
	}
}
