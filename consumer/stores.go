package consumer

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/awssm"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// OpenFile reads secrets from the dev file store in dir (the directory holding
// store.key and secrets/, e.g. ~/.keyturn/store for `keyturn dev`). It opens the store
// read-only (file.OpenReadOnly): it never creates, locks, tidies or upgrades anything,
// so the process needs read access only, to the directory, its secrets/ and store.key,
// which must be mode 0600 or stricter. A directory with no store key is refused, so a
// mistyped path fails instead of reading as an empty store; so is a store written by a
// Keyturn older than format 2, with the command that upgrades it.
func OpenFile(dir string) (*StoreSource, error) {
	st, err := file.OpenReadOnly(dir)
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
	// consumer never reads under it (see vaultkv.Store.ReadCurrent); it is only used to
	// refuse a secret whose path would fall under it, as the worker does.
	StagingPrefix string
}

// OpenVault logs in to Vault and reads secrets from KV v2 through the store's
// current-only read path (vaultkv.Store.ReadCurrent): the token needs read on
// <mount>/data/<path> and <mount>/metadata/<path>, and nothing on the staging prefix.
// Close the returned source to stop its token renewal.
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
