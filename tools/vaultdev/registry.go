package main

import (
	"sort"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault/plugincatalog"
)

// registry tells the core's plugin catalog which engines are built in. The core calls it
// when it lists mounts and resolves plugin versions, and would dereference a nil registry,
// so it reports exactly the factories given to the core and nothing else.
type registry struct {
	secrets     map[string]logical.Factory
	credentials map[string]logical.Factory
}

var _ plugincatalog.BuiltinRegistry = registry{}

func newRegistry(secrets, credentials map[string]logical.Factory) registry {
	return registry{secrets: secrets, credentials: credentials}
}

func (r registry) factories(t consts.PluginType) map[string]logical.Factory {
	switch t {
	case consts.PluginTypeSecrets:
		return r.secrets
	case consts.PluginTypeCredential:
		return r.credentials
	default:
		return nil
	}
}

// Contains implements plugincatalog.BuiltinRegistry.
func (r registry) Contains(name string, t consts.PluginType) bool {
	_, ok := r.factories(t)[name]
	return ok
}

// Get implements plugincatalog.BuiltinRegistry. The catalog expects a constructor that
// returns the factory itself.
func (r registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	f, ok := r.factories(t)[name]
	if !ok {
		return nil, false
	}
	return func() (interface{}, error) { return f, nil }, true
}

// Keys implements plugincatalog.BuiltinRegistry.
func (r registry) Keys(t consts.PluginType) []string {
	var keys []string
	for k := range r.factories(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DeprecationStatus implements plugincatalog.BuiltinRegistry: the engines here are all
// supported.
func (r registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if !r.Contains(name, t) {
		return consts.Unknown, false
	}
	return consts.Supported, true
}

// IsBuiltinEntPlugin implements plugincatalog.BuiltinRegistry: no Enterprise plugins here.
func (r registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }
