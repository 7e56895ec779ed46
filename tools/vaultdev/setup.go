package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/helper/namespace"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

// configure brings the mounts Keyturn expects into place. It is idempotent: on a restart
// with a data directory the mounts already exist and are left as they are.
func configure(ctx context.Context, core *vault.Core, token string) error {
	ctx = namespace.RootContext(ctx)

	mounts, err := handle(ctx, core, token, logical.ReadOperation, "sys/mounts", nil)
	if err != nil {
		return fmt.Errorf("list secrets engines: %w", err)
	}
	if _, ok := mounts.Data["secret/"]; !ok {
		_, err := handle(ctx, core, token, logical.UpdateOperation, "sys/mounts/secret", map[string]any{
			"type":        "kv",
			"description": "KV version 2, mounted by vaultdev",
			"options":     map[string]string{"version": "2"},
		})
		if err != nil {
			return fmt.Errorf("mount kv v2 at secret/: %w", err)
		}
	}

	auths, err := handle(ctx, core, token, logical.ReadOperation, "sys/auth", nil)
	if err != nil {
		return fmt.Errorf("list auth methods: %w", err)
	}
	if _, ok := auths.Data["approle/"]; !ok {
		_, err := handle(ctx, core, token, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"})
		if err != nil {
			return fmt.Errorf("enable approle auth: %w", err)
		}
	}

	return waitKVReady(ctx, core, token)
}

// waitKVReady waits until KV v2 at secret/ answers. A freshly mounted (or freshly
// unsealed) KV v2 engine runs an upgrade check in the background and refuses requests
// until it finishes; announcing readiness before that would make a test's first write fail.
func waitKVReady(ctx context.Context, core *vault.Core, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := handle(ctx, core, token, logical.ReadOperation, "secret/config", nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kv v2 at secret/ not ready: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handle sends one request straight to the core, without HTTP, and folds an error
// response into the returned error.
func handle(ctx context.Context, core *vault.Core, token string, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation:   op,
		Path:        path,
		ClientToken: token,
		Data:        data,
	})
	if err != nil {
		return resp, err
	}
	if resp != nil && resp.IsError() {
		return resp, resp.Error()
	}
	if resp == nil && op == logical.ReadOperation {
		return nil, errors.New("empty response")
	}
	return resp, nil
}
