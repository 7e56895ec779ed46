package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	jwtauth "github.com/hashicorp/vault-plugin-auth-jwt"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/database"
	"github.com/hashicorp/vault/builtin/logical/pki"
	"github.com/hashicorp/vault/helper/namespace"
	"github.com/hashicorp/vault/plugins/database/postgresql"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
	physfile "github.com/hashicorp/vault/sdk/physical/file"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// stateFile, inside -data, keeps what a restart needs to come back as the same server:
// the single unseal key share and the root token ID. Plain text on purpose: this is a
// development server.
const stateFile = "vaultdev-state.json"

// state is the content of stateFile.
type state struct {
	UnsealKey string `json:"unseal_key"` // base64
	RootToken string `json:"root_token"`
}

// newCore builds an unstarted Vault core on in-memory storage, or on Vault's file backend
// under dataDir/storage when dataDir is set.
func newCore(dataDir string, logger hclog.Logger) (*vault.Core, error) {
	var backend physical.Backend
	var err error
	if dataDir == "" {
		backend, err = inmem.NewInmem(nil, logger.Named("storage"))
	} else {
		dir := filepath.Join(dataDir, "storage")
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		backend, err = physfile.NewFileBackend(map[string]string{"path": dir}, logger.Named("storage"))
	}
	if err != nil {
		return nil, fmt.Errorf("create storage: %w", err)
	}

	// Only the engines Keyturn uses are linked in; Vault's full builtin registry would
	// pull every database plugin and cloud SDK into the build. The database engine and
	// its PostgreSQL plugin are here for the benchmark's anchor (a static role rotated by
	// Vault itself, tests/bench), not for Keyturn: the plugin runs in-process, as Vault's
	// builtin plugins do, so no plugin directory or binary is needed.
	logicalBackends := map[string]logical.Factory{
		"kv":       kv.Factory,
		"pki":      pki.Factory,
		"database": database.Factory,
	}
	credentialBackends := map[string]logical.Factory{
		"approle": approle.Factory,
		"jwt":     jwtauth.Factory,
	}
	databasePlugins := map[string]databaseFactory{
		"postgresql-database-plugin": postgresql.New,
	}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:           backend,
		Logger:             logger,
		LogicalBackends:    logicalBackends,
		CredentialBackends: credentialBackends,
		BuiltinRegistry:    newRegistry(logicalBackends, credentialBackends, databasePlugins),
		// Containers and CI runners rarely allow mlock; there is nothing to protect here.
		DisableMlock: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create vault core: %w", err)
	}
	return core, nil
}

// initAndUnseal initializes a new core with one key share, or reuses the saved share of
// an existing one, unseals it and makes rootToken a root token.
func initAndUnseal(ctx context.Context, core *vault.Core, dataDir, rootToken string) error {
	ctx = namespace.RootContext(ctx)
	initialized, err := core.Initialized(ctx)
	if err != nil {
		return fmt.Errorf("check initialization: %w", err)
	}

	var st state
	if !initialized {
		res, err := core.Initialize(ctx, &vault.InitParams{
			BarrierConfig: &vault.SealConfig{Type: "shamir", SecretShares: 1, SecretThreshold: 1},
		})
		if err != nil {
			return fmt.Errorf("initialize: %w", err)
		}
		st = state{UnsealKey: base64.StdEncoding.EncodeToString(res.SecretShares[0]), RootToken: res.RootToken}
		// Save before anything else: if the process dies now, a restart can still unseal.
		if err := saveState(dataDir, st); err != nil {
			return err
		}
	} else {
		if dataDir == "" {
			return errors.New("storage is initialized but there is no data directory to read the key from")
		}
		st, err = loadState(dataDir)
		if err != nil {
			return err
		}
	}

	key, err := base64.StdEncoding.DecodeString(st.UnsealKey)
	if err != nil {
		return fmt.Errorf("decode unseal key: %w", err)
	}
	unsealed, err := core.Unseal(key)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if !unsealed {
		return errors.New("unseal: still sealed after the only key share")
	}

	if st.RootToken == rootToken {
		return nil
	}
	// First start, or a restart asked for a different root token: create the requested
	// one with the token we have, then retire the old one.
	if err := createRootToken(ctx, core, st.RootToken, rootToken); err != nil {
		return err
	}
	if _, err := handle(ctx, core, rootToken, logical.UpdateOperation, "auth/token/revoke", map[string]any{"token": st.RootToken}); err != nil {
		return fmt.Errorf("revoke initial root token: %w", err)
	}
	st.RootToken = rootToken
	return saveState(dataDir, st)
}

// createRootToken makes a root token with a fixed ID, so tests and developers can use a
// known value such as "root".
func createRootToken(ctx context.Context, core *vault.Core, parent, id string) error {
	resp, err := handle(ctx, core, parent, logical.UpdateOperation, "auth/token/create", map[string]any{
		"id":                id,
		"policies":          []string{"root"},
		"no_parent":         true,
		"no_default_policy": true,
	})
	if err != nil {
		return fmt.Errorf("create root token: %w", err)
	}
	if resp == nil || resp.Auth == nil {
		return errors.New("create root token: no token in the response")
	}
	return nil
}

// saveState writes the state file when there is a data directory; in memory nothing
// outlives the process, so there is nothing to save.
func saveState(dataDir string, st state) error {
	if dataDir == "" {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	path := filepath.Join(dataDir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func loadState(dataDir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dataDir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("storage in %s is initialized but %s is missing: cannot unseal", dataDir, stateFile)
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode state: %w", err)
	}
	return st, nil
}
