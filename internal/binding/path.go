package binding

import (
	"context"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// atPath keeps a secret's versions under the inventory's store path, which consumers
// read, instead of under the secret's ID. The rotation steps keep using the ID.
type atPath struct {
	stores.Store
	path secret.ID
}

var _ stores.Store = atPath{}

// storeAt returns s addressed at path, or s itself when path is the ID.
func storeAt(s stores.Store, id, path secret.ID) stores.Store {
	if path == "" || path == id {
		return s
	}
	return atPath{Store: s, path: path}
}

func (a atPath) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	req.SecretID = a.path
	return a.Store.StagePending(ctx, req)
}

func (a atPath) Read(ctx context.Context, _ secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	return a.Store.Read(ctx, a.path, stage)
}

func (a atPath) ReadVersion(ctx context.Context, _ secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	return a.Store.ReadVersion(ctx, a.path, token)
}

func (a atPath) Promote(ctx context.Context, _ secret.ID, token secret.VersionToken) error {
	return a.Store.Promote(ctx, a.path, token)
}

func (a atPath) DiscardPending(ctx context.Context, _ secret.ID, token secret.VersionToken) error {
	return a.Store.DiscardPending(ctx, a.path, token)
}

func (a atPath) ListVersions(ctx context.Context, _ secret.ID) ([]secret.Version, error) {
	return a.Store.ListVersions(ctx, a.path)
}
