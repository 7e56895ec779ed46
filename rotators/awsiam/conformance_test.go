package awsiam

import (
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// harness gives each subtest a fresh IAM user from newTarget. DeleteInactive is on because
// the suite rotates three times without purging: the key revoked one round before still
// holds the second slot at the next Mint, as it would on AWS with a long DeleteAfter.
func harness(name string, newTarget func(t *testing.T) target) rotatortest.Harness {
	var (
		mu      sync.Mutex
		targets = map[*testing.T]target{}
	)
	return rotatortest.Harness{
		Name: name,
		New: func(t *testing.T) rotators.Rotator {
			tg := newTarget(t)
			mu.Lock()
			targets[t] = tg
			mu.Unlock()
			// A short window: nothing in the suite waits for STS, so a refusal there is a
			// failure to report quickly, not a propagation delay.
			return tg.rotator(t, func(c *Config) { c.DeleteInactive = true; c.ConsistencyTimeout = 3 * time.Second })
		},
		PublicFields: []string{FieldAccessKeyID},
		// moto is consistent at once; on AWS, Test itself waits for STS to catch up.
		Settle: 0,
		AfterRotation: func(t *testing.T, prev, next secret.Version) {
			mu.Lock()
			tg := targets[t]
			mu.Unlock()
			keys := tg.keys(t)
			if len(keys) > 2 {
				t.Errorf("user has %d keys, more than IAM allows", len(keys))
			}
			if s := keys[keyID(next)]; s != types.StatusTypeActive {
				t.Errorf("new key %s is %q, want Active", keyID(next), s)
			}
			// Revoke deactivates; the key stays recoverable until Purge.
			if s := keys[keyID(prev)]; s != types.StatusTypeInactive {
				t.Errorf("revoked key %s is %q, want Inactive", keyID(prev), s)
			}
			for _, v := range []secret.Version{prev, next} {
				if v.Metadata[MetadataUser] != tg.user {
					t.Errorf("version %d metadata user %q, want %q", v.Number, v.Metadata[MetadataUser], tg.user)
				}
			}
		},
	}
}

// TestConformance runs the suite on the shared moto, which checks no signature: the
// suite's wrong material there is caught by Test comparing key IDs and asking IAM.
func TestConformance(t *testing.T) {
	mototest.Need(t, moto)
	rotatortest.Run(t, harness("moto", newTarget))
}

// TestConformanceEnforcedIAM runs the suite with signatures checked and an admin limited
// to the actions of iam-policy.json, which proves those actions are enough.
func TestConformanceEnforcedIAM(t *testing.T) {
	e := startEnforced(t)
	policy := policyFromFile(t)
	rotatortest.Run(t, harness("moto-enforced-iam", func(t *testing.T) target { return e.target(t, policy) }))
}
