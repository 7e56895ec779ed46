package main

import (
	"maps"
	"slices"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault/plugincatalog"
)

// databaseFactory builds a database plugin in-process: a plugin package's New, which
// returns the plugin itself (a dbplugin v5 Database). Vault's own builtin registry keeps
// its database plugins in this form.
type databaseFactory = func() (interface{}, error)

// registry tells the core's plugin catalog which engines and database plugins are built
// in. The core calls it when it lists mounts and resolves plugin versions, and would
// dereference a nil registry, so it reports exactly the factories given to the core, plus
// the database plugins the database engine looks up by name, and nothing else.
type registry struct {
	secrets     map[string]logical.Factory
	credentials map[string]logical.Factory
	databases   map[string]databaseFactory
}

var _ plugincatalog.BuiltinRegistry = registry{}

func newRegistry(secrets, credentials map[string]logical.Factory, databases map[string]databaseFactory) registry {
	return registry{secrets: secrets, credentials: credentials, databases: databases}
}

// Contains implements plugincatalog.BuiltinRegistry.
func (r registry) Contains(name string, t consts.PluginType) bool {
	_, ok := r.Get(name, t)
	return ok
}

// Get implements plugincatalog.BuiltinRegistry. The catalog expects a constructor: for an
// engine it returns the engine's factory, for a database plugin the plugin itself.
func (r registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	switch t {
	case consts.PluginTypeSecrets, consts.PluginTypeCredential:
		f, ok := r.engines(t)[name]
		if !ok {
			return nil, false
		}
		return func() (interface{}, error) { return f, nil }, true
	case consts.PluginTypeDatabase:
		f, ok := r.databases[name]
		return f, ok
	default:
		return nil, false
	}
}

// Keys implements plugincatalog.BuiltinRegistry.
func (r registry) Keys(t consts.PluginType) []string {
	if t == consts.PluginTypeDatabase {
		return slices.Sorted(maps.Keys(r.databases))
	}
	return slices.Sorted(maps.Keys(r.engines(t)))
}

// DeprecationStatus implements plugincatalog.BuiltinRegistry: everything here is
// supported.
func (r registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if !r.Contains(name, t) {
		return consts.Unknown, false
	}
	return consts.Supported, true
}

// IsBuiltinEntPlugin implements plugincatalog.BuiltinRegistry: no Enterprise plugins here.
func (r registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }

// engines returns the secrets or auth engine factories of type t.
func (r registry) engines(t consts.PluginType) map[string]logical.Factory {
	switch t {
	case consts.PluginTypeSecrets:
		return r.secrets
	case consts.PluginTypeCredential:
		return r.credentials
	default:
		return nil
	}
}
