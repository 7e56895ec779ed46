package testenv

import (
	"context"
	"fmt"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
)

// Catalog is secrets bound in memory, for tests and benchmarks that run the real
// activities on targets of their own (the fake kind): the worker's activities.Resolver
// and, as binding.Resolver is in production, the activities.Catalog an incident selects
// its scope from.
type Catalog struct {
	bindings map[secret.ID]activities.Binding
	infos    []activities.SecretInfo
}

var (
	_ activities.Resolver = (*Catalog)(nil)
	_ activities.Catalog  = (*Catalog)(nil)
)

// NewCatalog returns an empty catalog with room for n secrets.
func NewCatalog(n int) *Catalog {
	return &Catalog{bindings: make(map[secret.ID]activities.Binding, n), infos: make([]activities.SecretInfo, 0, n)}
}

// Add binds a secret, described by info (whose ID is the secret's).
func (c *Catalog) Add(b activities.Binding, info activities.SecretInfo) {
	c.bindings[info.ID] = b
	c.infos = append(c.infos, info)
}

// Resolve implements activities.Resolver.
func (c *Catalog) Resolve(_ context.Context, id secret.ID) (activities.Binding, error) {
	b, ok := c.bindings[id]
	if !ok {
		return activities.Binding{}, fmt.Errorf("%w: %s", activities.ErrUnknownSecret, id)
	}
	return b, nil
}

// Secrets implements activities.Catalog.
func (c *Catalog) Secrets() []activities.SecretInfo { return c.infos }
