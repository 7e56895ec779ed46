package binding

import (
	"context"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// atPath keeps a secret's versions under the inventory's store path, which consumers
// read, instead of under the secret's ID. It is the one place that translates between
// the two: the store sees only the path, and every version it hands back names the
// secret by its ID again, so rotators, workflows and handles never see the path where
// the ID is meant.
type atPath struct {
	stores.Store
	id   secret.ID
	path secret.ID
}

var _ stores.Store = atPath{}

// storeAt returns s addressed at path, or s itself when path is the ID.
func storeAt(s stores.Store, id, path secret.ID) stores.Store {
	if path == "" || path == id {
		return s
	}
	return atPath{Store: s, id: id, path: path}
}

// named gives a version from the store back its secret's ID.
func (a atPath) named(v secret.Version) secret.Version {
	v.SecretID = a.id
	return v
}

func (a atPath) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	req.SecretID = a.path
	v, err := a.Store.StagePending(ctx, req)
	return a.named(v), err
}

func (a atPath) Read(ctx context.Context, _ secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	v, m, err := a.Store.Read(ctx, a.path, stage)
	return a.named(v), m, err
}

func (a atPath) ReadVersion(ctx context.Context, _ secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	v, m, err := a.Store.ReadVersion(ctx, a.path, token)
	return a.named(v), m, err
}

func (a atPath) Promote(ctx context.Context, _ secret.ID, token secret.VersionToken) error {
	return a.Store.Promote(ctx, a.path, token)
}

func (a atPath) DiscardPending(ctx context.Context, _ secret.ID, token secret.VersionToken) error {
	return a.Store.DiscardPending(ctx, a.path, token)
}

func (a atPath) ListVersions(ctx context.Context, _ secret.ID) ([]secret.Version, error) {
	vs, err := a.Store.ListVersions(ctx, a.path)
	for i := range vs {
		vs[i] = a.named(vs[i])
	}
	return vs, err
}
