package binding

import (
	"context"
	"testing"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// seenIDs records the secret ID of every version a rotator is handed.
type seenIDs struct {
	*fake.Rotator
	ids []secret.ID
}

func (s *seenIDs) Test(ctx context.Context, req rotators.TestRequest) error {
	s.ids = append(s.ids, req.Version.SecretID)
	return s.Rotator.Test(ctx, req)
}

func (s *seenIDs) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	s.ids = append(s.ids, req.Version.SecretID)
	return s.Rotator.Revoke(ctx, req)
}

// A secret whose store path differs from its ID: the store keeps its versions under the
// path, and the rotator (an HTTP API template's {{.SecretID}}, say) is only ever handed
// the ID.
func TestStorePathNeverReachesTheRotator(t *testing.T) {
	ctx := context.Background()
	const id, path = secret.ID("prod/payments/api"), secret.ID("teams/payments/stripe-key")
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rot := &seenIDs{Rotator: fake.New(fake.Twins)}
	steps := rotation.Steps{SecretID: id, Rotator: rot, Store: storeAt(store, id, path)}
	for _, token := range []secret.VersionToken{"rotate/prod/payments/api/run-1", "rotate/prod/payments/api/run-2"} {
		created, err := steps.Create(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if created.Version.SecretID != id {
			t.Fatalf("Create reported the version under %q, want the secret ID %q", created.Version.SecretID, id)
		}
		if err := steps.Test(ctx, token); err != nil {
			t.Fatal(err)
		}
		promoted, err := steps.Promote(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if promoted.Previous != nil {
			if err := steps.Revoke(ctx, *promoted.Previous, &promoted.Current); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, got := range rot.ids {
		if got != id {
			t.Fatalf("the rotator was handed %q where the secret ID %q is meant (all: %v)", got, id, rot.ids)
		}
	}
	if len(rot.ids) < 3 {
		t.Fatalf("the rotator saw %d versions, want tests and a revoke", len(rot.ids))
	}
	// Consumers read the path, not the ID.
	if _, _, err := store.Read(ctx, path, secret.StageCurrent); err != nil {
		t.Fatalf("the store must keep the versions under the path: %v", err)
	}
	if _, _, err := store.Read(ctx, id, secret.StageCurrent); err == nil {
		t.Fatal("nothing may be stored under the ID")
	}
}
