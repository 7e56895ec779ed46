package inventory

import (
	"strings"
	"testing"
)

func TestLoadRedis(t *testing.T) {
	inv, err := Load("testdata/kinds.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r := inv.Secrets[4].Redis
	if r == nil || len(r.Nodes) != 2 || r.User != "sessions" || r.Admin.Username != "keyturn" || r.Admin.Password != "env:REDIS_ADMIN" ||
		strings.Join(r.Check, " ") != "GET sessions:health" || r.Timeout != DefaultRedisTimeout || r.TLS {
		t.Errorf("redis block %+v", r)
	}
}

func TestRedisProblems(t *testing.T) {
	const text = `version: 1
secrets:
  - id: a/redis
    kind: redis
    redis:
      nodes: ["redis.internal:6379", "bad host:1", "localhost", "127.0.0.1:6379"]
      user: ""
      admin: {username: keyturn, password: hunter2}
      check: ["", "GET\u0000x"]
      ca_file: /nonexistent.pem
  - id: b/redis
    kind: redis
    redis:
      nodes: [localhost:7000]
      user: app
      admin: {username: app, password: env:X}
      timeout: 0s
  - id: c/redis
    kind: redis
    redis:
      nodes: [127.0.0.1:7000]
      user: keyturn
      admin: {username: root, password: env:X}
  - id: d/redis
    kind: redis
    redis:
      nodes: [localhost:7000]
      user: other
      admin: {username: keyturn, password: env:X}
  - id: e/redis
    kind: redis
`
	wantKindProblems(t, text, map[string]string{
		"secrets[0].redis.nodes[0]":       "without TLS",
		"secrets[0].redis.nodes[1]":       "not a node address",
		"secrets[0].redis.nodes[3]":       "the same node as redis.nodes[2]",
		"secrets[0].redis.user":           "is empty",
		"secrets[0].redis.admin.password": "",
		"secrets[0].redis.check[0]":       "is empty",
		"secrets[0].redis.check[1]":       "control character",
		"secrets[0].redis.tls":            "set tls: true",
		"secrets[1].redis.admin.username": "the managed user itself",
		"secrets[1].redis.timeout":        "between 1s",
		"secrets[3].redis.admin.username": "also the managed user of secrets[2]",
		"secrets[4].redis":                "required for kind \"redis\"",
	}, "hunter2")
}
