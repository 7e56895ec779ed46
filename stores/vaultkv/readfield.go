package vaultkv

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// ReadField returns one field of the current version of any KV secret, for references
// such as vault:secret/admin/orders-db#password in the inventory. path is written the
// way `vault kv get` takes it, mount first and without the data/ segment:
// "secret/admin/orders-db". KV version 1 mounts work too. A missing secret or field is
// stores.ErrNotFound.
func (s *Store) ReadField(ctx context.Context, path, field string) (secret.Sensitive, error) {
	path = strings.Trim(path, "/")
	if field == "" {
		return secret.Sensitive{}, fmt.Errorf("read field of %s: no field named", path)
	}
	mount, rest, v2, err := s.locate(ctx, path)
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("read field %s of %s: %w", field, path, err)
	}
	if rest == "" {
		return secret.Sensitive{}, fmt.Errorf("read field %s of %s: name the mount and the path, e.g. secret/admin/orders-db", field, path)
	}

	full := mount + "/" + rest
	if v2 {
		full = mount + "/data/" + rest
	}
	sec, err := s.client.Logical().ReadWithContext(ctx, full)
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("read field %s of %s: %w", field, path, s.explain(err, full, capRead))
	}
	var data map[string]any
	if sec != nil {
		data = sec.Data
		if v2 {
			data, _ = sec.Data["data"].(map[string]any)
		}
	}
	if data == nil {
		hint := ""
		if v2 && strings.HasPrefix(rest, "data/") {
			hint = " (write the path as for `vault kv get`, without data/)"
		}
		return secret.Sensitive{}, fmt.Errorf("read field %s of %s: no secret at %s%s: %w", field, path, full, hint, stores.ErrNotFound)
	}
	v, ok := data[field]
	if !ok {
		return secret.Sensitive{}, fmt.Errorf("read field %s of %s: the secret has no field %q: %w", field, path, field, stores.ErrNotFound)
	}
	return secret.NewSensitive(dataString(v)), nil
}

// locate splits path into its mount and the path under it, asking Vault the way its CLI
// does (sys/internal/ui/mounts answers any token with a capability on the path). When
// Vault will not say, the first segment is taken as a KV v2 mount.
func (s *Store) locate(ctx context.Context, path string) (mount, rest string, v2 bool, err error) {
	sec, err := s.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
	if err == nil && sec != nil && sec.Data != nil {
		if m, ok := sec.Data["path"].(string); ok && m != "" && strings.HasPrefix(path+"/", m) {
			mount = strings.TrimSuffix(m, "/")
			rest = strings.TrimPrefix(strings.TrimPrefix(path, mount), "/")
			version := ""
			if opts, ok := sec.Data["options"].(map[string]any); ok {
				version, _ = opts["version"].(string)
			}
			return mount, rest, version == "2", nil
		}
	}
	if err != nil {
		if e := s.explain(err, "sys/internal/ui/mounts/"+path, capRead); isUnavailable(e) {
			return "", "", false, e
		}
	}
	mount, rest, _ = strings.Cut(path, "/")
	return mount, rest, true, nil
}
