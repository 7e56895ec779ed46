package vaulttest

import (
	"testing"
)

func TestStartServesKVv2AndAppRole(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client(t)

	mounts, err := c.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatalf("list mounts: %v", err)
	}
	if m := mounts["secret/"]; m == nil || m.Type != "kv" || m.Options["version"] != "2" {
		t.Fatalf("secret/ is %+v, want kv version 2", m)
	}
	auths, err := c.Sys().ListAuthWithContext(t.Context())
	if err != nil {
		t.Fatalf("list auth: %v", err)
	}
	if a := auths["approle/"]; a == nil || a.Type != "approle" {
		t.Fatalf("approle/ is %+v", a)
	}
	if _, err := c.KVv2("secret").Put(t.Context(), "hello", map[string]any{"a": "b"}); err != nil {
		t.Fatalf("first write: %v", err)
	}
}

func TestRestartKeepsDataPortAndToken(t *testing.T) {
	s := Start(t, Options{DataDir: t.TempDir()})
	addr, token := s.Addr, s.Token
	if _, err := s.Client(t).KVv2("secret").Put(t.Context(), "kept", map[string]any{"v": "1"}); err != nil {
		t.Fatalf("write: %v", err)
	}

	s.Stop()
	if _, err := s.Client(t).KVv2("secret").Get(t.Context(), "kept"); err == nil {
		t.Fatal("read succeeded while the server was stopped")
	}
	s.Stop() // stopping twice is harmless

	s.Restart(t)
	if s.Addr != addr || s.Token != token {
		t.Fatalf("restart moved the server from %s to %s (token changed: %v)", addr, s.Addr, s.Token != token)
	}
	got, err := s.Client(t).KVv2("secret").Get(t.Context(), "kept")
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if got.Data["v"] != "1" {
		t.Fatalf("data after restart is %v", got.Data)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := newTailBuffer(4)
	_, _ = b.Write([]byte("abc"))
	_, _ = b.Write([]byte("def"))
	if got := b.String(); got != "cdef" {
		t.Fatalf("tail is %q, want %q", got, "cdef")
	}
}
