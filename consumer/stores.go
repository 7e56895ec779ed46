package consumer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/awssm"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// OpenFile reads secrets from the dev file store in dir (the directory holding
// store.key and secrets/, e.g. ~/.keyturn/store for `keyturn dev`). The process needs
// read access to the key file, which must be mode 0600 or stricter. Unlike file.Open it
// refuses a directory with no store key: a mistyped path must fail, not become an empty
// store.
func OpenFile(dir string) (*StoreSource, error) {
	if _, err := os.Stat(filepath.Join(dir, "store.key")); err != nil {
		return nil, fmt.Errorf("open file store %s: no store key: %w", dir, err)
	}
	st, err := file.Open(dir)
	if err != nil {
		return nil, err
	}
	return FromStore(st), nil
}

// Vault says how a consumer reaches the Vault KV v2 mount Keyturn writes to. For other
// auth methods (AppRole, JWT, Kubernetes) or TLS settings, build a vaultkv.Store with
// vaultkv.New and wrap it with FromStore.
type Vault struct {
	// Address is Vault's URL, e.g. https://vault.example.com:8200.
	Address string
	// Token is the consumer's Vault token. It is renewed in the background when it can
	// be, until Close.
	Token secret.Sensitive
	// Mount is the KV v2 mount; vaultkv.DefaultMount ("secret") when empty.
	Mount string
	// StagingPrefix is the worker's staging prefix, when it is not the default. The
	// store's read path consults the staging document so that a promotion caught half
	// way reads as done, so the token's policy needs read on it (see the package doc).
	StagingPrefix string
}

// OpenVault logs in to Vault and reads secrets from KV v2. Close the returned source to
// stop its token renewal.
func OpenVault(ctx context.Context, v Vault) (*StoreSource, error) {
	st, err := vaultkv.New(ctx, vaultkv.Config{
		Address:       v.Address,
		Mount:         v.Mount,
		StagingPrefix: v.StagingPrefix,
		Auth:          vaultkv.Auth{Method: vaultkv.AuthToken, Token: v.Token},
	})
	if err != nil {
		return nil, err
	}
	return FromStore(st), nil
}

// OpenAWS reads secrets from AWS Secrets Manager with the caller's AWS configuration
// (config.LoadDefaultConfig, usually). namePrefix is the worker's NamePrefix ("" when
// secrets are named by their ID). Only secretsmanager:GetSecretValue is needed.
func OpenAWS(cfg aws.Config, namePrefix string) (*StoreSource, error) {
	st, err := awssm.NewFromConfig(cfg, awssm.Config{NamePrefix: namePrefix})
	if err != nil {
		return nil, err
	}
	return FromStore(st), nil
}
