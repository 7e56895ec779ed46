package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// TestKillsLeaveNoOrphanKey kills Create at random points (see rotatortest.RunKills),
// above all between the API's answer to the create call and the store write. The retry
// sends the same Idempotency-Key (the version token), so the API answers with the key it
// already made instead of a second one: after every retried rotation exactly one key is
// live on the API, the current version's, and the API made exactly one key per
// rotation.
func TestKillsLeaveNoOrphanKey(t *testing.T) {
	s := apitest.Start(t)
	var minted []string
	rep := rotatortest.RunKills(t, rotatortest.KillHarness{
		New: func(t *testing.T, point func(string)) rotators.Rotator {
			cfg := exampleConfig(s)
			cfg.Client = &http.Client{Transport: rotatortest.PointTransport(nil, point)}
			return recordingMint{mustNew(t, cfg), &minted}
		},
		// The API names no keys, but counts the live ones: every live key the rotator
		// ever heard of by its ID, and a placeholder for each one it never heard of.
		Live: func(t *testing.T) []string {
			var live []string
			for _, id := range minted {
				if s.Live(id) && !slices.Contains(live, id) {
					live = append(live, id)
				}
			}
			for i := len(live); i < s.Count(); i++ {
				live = append(live, fmt.Sprintf("unknown-%d", i))
			}
			slices.Sort(live)
			return live
		},
		Handle: func(v secret.Version) string { return v.Metadata[httpapi.MetadataKeyID] },
	})
	// The API made one key per rotation, however often its Create was killed.
	if s.Created() != rep.Rotations {
		t.Errorf("the API made %d keys in %d rotations, want one per rotation", s.Created(), rep.Rotations)
	}
}

// recordingMint notes the ID of every key Mint reports.
type recordingMint struct {
	*httpapi.Rotator
	minted *[]string
}

func (m recordingMint) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	report := req.Minted
	req.Minted = func(md map[string]string) {
		*m.minted = append(*m.minted, md[httpapi.MetadataKeyID])
		if report != nil {
			report(md)
		}
	}
	return m.Rotator.Mint(ctx, req)
}

// A key the store holds is never deleted as abandoned, whatever the hint says.
func TestMintKeepsAbandonedKeysTheStoreKnows(t *testing.T) {
	s := apitest.Start(t)
	r := mustNew(t, exampleConfig(s))
	first, err := r.Mint(t.Context(), rotators.MintRequest{SecretID: "prod/payments/api", Token: "rotate/x/run-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Mint(t.Context(), rotators.MintRequest{
		SecretID: "prod/payments/api", Token: "rotate/x/run-2",
		Abandoned: []map[string]string{first.Metadata}, Known: []map[string]string{first.Metadata},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Live(first.Metadata[httpapi.MetadataKeyID]) || s.Count() != 2 {
		t.Fatalf("the stored key live %v, %d keys live; want it kept beside the new one", s.Live(first.Metadata[httpapi.MetadataKeyID]), s.Count())
	}
}
