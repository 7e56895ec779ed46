package awsiam

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// TestKillsLeaveNoOrphanKey kills Create at random points on moto, 20 times at least (see
// rotatortest.RunKills): between IAM's answer to CreateAccessKey and the store write
// above all, where the key exists and nobody has heard of it. After every retried
// rotation the user must hold exactly the current version's key.
func TestKillsLeaveNoOrphanKey(t *testing.T) {
	tg := newTarget(t)
	rotatortest.RunKills(t, rotatortest.KillHarness{
		New: func(t *testing.T, point func(string)) rotators.Rotator {
			cfg := tg.admin.Copy()
			cfg.HTTPClient = &http.Client{Transport: rotatortest.PointTransport(nil, point)}
			r, err := New(Config{UserName: tg.user, ConsistencyTimeout: 3 * time.Second}, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return r
		},
		Live: func(t *testing.T) []string {
			var ids []string
			for id := range tg.keys(t) {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return ids
		},
		Handle: func(v secret.Version) string { return v.Metadata[MetadataAccessKeyID] },
	})
}
