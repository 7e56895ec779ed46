package vaultkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The KV v2 requests the store makes, each mapped to a clear error. Paths are relative to
// the mount; the mount's data/ and metadata/ prefixes are added here.

func (s *Store) dataPath(p string) string     { return s.mount + "/data/" + p }
func (s *Store) metadataPath(p string) string { return s.mount + "/metadata/" + p }

// kvMetadata is the part of a path's metadata the store uses.
type kvMetadata struct {
	current  int
	versions map[int]kvVersion
	custom   map[string]any
}

// readMetadata reads a path's metadata; nil when the path has never been written.
func (s *Store) readMetadata(ctx context.Context, p string) (*kvMetadata, error) {
	full := s.metadataPath(p)
	sec, err := s.client.Logical().ReadWithContext(ctx, full)
	if err != nil {
		return nil, s.explain(err, full, capRead)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	md := &kvMetadata{versions: map[int]kvVersion{}}
	md.current = intField(sec.Data["current_version"])
	if custom, ok := sec.Data["custom_metadata"].(map[string]any); ok {
		md.custom = custom
	}
	if versions, ok := sec.Data["versions"].(map[string]any); ok {
		for k, raw := range versions {
			n, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			v, _ := raw.(map[string]any)
			deletion, _ := v["deletion_time"].(string)
			destroyed, _ := v["destroyed"].(bool)
			md.versions[n] = kvVersion{deleted: deletion != "" || destroyed}
		}
	}
	return md, nil
}

// readData reads one version of a path (0: the current one). found is false when the
// path or the version does not exist or has been deleted; version is the KV version the
// answer is about, also for a deleted one.
func (s *Store) readData(ctx context.Context, p string, version int) (data map[string]any, gotVersion int, found bool, err error) {
	full := s.dataPath(p)
	var query map[string][]string
	if version > 0 {
		query = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	sec, err := s.client.Logical().ReadWithDataWithContext(ctx, full, query)
	if err != nil {
		return nil, 0, false, s.explain(err, full, capRead)
	}
	if sec == nil || sec.Data == nil {
		return nil, 0, false, nil
	}
	if md, ok := sec.Data["metadata"].(map[string]any); ok {
		gotVersion = intField(md["version"])
	}
	data, _ = sec.Data["data"].(map[string]any)
	return data, gotVersion, data != nil, nil
}

// writeData writes a new version of a path with check-and-set: cas is the version the
// path must be at (0: it must not exist yet). A lost race returns an error matching
// errCAS. It returns the new version.
func (s *Store) writeData(ctx context.Context, p string, data map[string]any, cas int) (int, error) {
	full := s.dataPath(p)
	sec, err := s.client.Logical().WriteWithContext(ctx, full, map[string]any{
		"data":    data,
		"options": map[string]any{"cas": cas},
	})
	if err != nil {
		return 0, s.explain(err, full, capWrite)
	}
	if sec == nil || sec.Data == nil {
		return 0, fmt.Errorf("write %s at %s: vault answered without a version", full, s.addr)
	}
	return intField(sec.Data["version"]), nil
}

// patchCustomMetadata merges fields into a path's custom metadata; a nil value deletes
// the key. Vault applies a merge patch atomically, so writers of different keys never
// undo each other.
func (s *Store) patchCustomMetadata(ctx context.Context, p string, fields map[string]any) error {
	full := s.metadataPath(p)
	_, err := s.client.Logical().JSONMergePatch(ctx, full, map[string]any{"custom_metadata": fields})
	return s.explain(err, full, capPatch)
}

// limitVersions sets how many versions Vault keeps of a path.
func (s *Store) limitVersions(ctx context.Context, p string, keep int) error {
	full := s.metadataPath(p)
	_, err := s.client.Logical().WriteWithContext(ctx, full, map[string]any{"max_versions": keep})
	return s.explain(err, full, capUpdate)
}

// intField reads a number from decoded JSON, which the API client gives as json.Number.
func intField(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0
		}
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	case string:
		i, _ := strconv.Atoi(n)
		return i
	default:
		return 0
	}
}

// isCAS reports whether err is a lost check-and-set.
func isCAS(err error) bool { return errors.Is(err, errCAS) }
