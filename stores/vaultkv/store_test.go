package vaultkv

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/storetest"
)

func TestConformance(t *testing.T) {
	srv := server(t)
	// One store for the whole suite, as a worker has: the suite gives every case a fresh
	// secret ID, and a new store per case would only add logins.
	s := newStore(t, srv)
	storetest.Run(t, func(t *testing.T) stores.Store { return s })
}

func TestConsumerPathOnlyEverShowsCurrent(t *testing.T) {
	srv := server(t)
	s, c := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "consumer")

	stage(t, s, id, "v1", pw("one"), map[string]string{"username": "app_blue"})
	if data, _ := consumer(t, c, id); data != nil {
		t.Fatalf("after the first stage the consumer path has fields %v, want nothing", keys(data))
	}

	promote(t, s, id, "v1")
	data, kv1 := consumer(t, c, id)
	if data["password"] != "one" || data["username"] != "app_blue" || len(data) != 2 {
		t.Fatalf("after promote the consumer path has fields %v, want password and username of v1", keys(data))
	}

	stage(t, s, id, "v2", pw("two"), map[string]string{"username": "app_green"})
	if data, kv := consumer(t, c, id); data["password"] != "one" || kv != kv1 {
		t.Fatal("staging v2 changed the consumer path")
	}

	if err := s.DiscardPending(t.Context(), id, "v2"); err != nil {
		t.Fatalf("DiscardPending: %v", err)
	}
	if data, kv := consumer(t, c, id); data["password"] != "one" || kv != kv1 {
		t.Fatal("discarding v2 changed the consumer path")
	}

	stage(t, s, id, "v3", pw("three"), map[string]string{"username": "app_green"})
	promote(t, s, id, "v3")
	data, kv3 := consumer(t, c, id)
	if data["password"] != "three" || data["username"] != "app_green" || kv3 != kv1+1 {
		t.Fatalf("after promoting v3 the consumer path is at KV version %d (want %d) with fields %v", kv3, kv1+1, keys(data))
	}

	// Rollback: a new KV version with the previous material, whose token is v1 again.
	promote(t, s, id, "v1")
	data, kv4 := consumer(t, c, id)
	if data["password"] != "one" || data["username"] != "app_blue" || kv4 != kv3+1 {
		t.Fatalf("after the rollback the consumer path is at KV version %d (want %d) with password of v1: %v", kv4, kv3+1, data["password"] == "one")
	}
	expectRead(t, s, id, secret.StageCurrent, "v1", pw("one"))
	expectRead(t, s, id, secret.StagePrevious, "v3", pw("three"))
	cur, _, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil || cur.Metadata["username"] != "app_blue" || cur.Number != 1 {
		t.Fatalf("current after rollback is %+v (%v), want v1 with number 1 and its metadata", cur, err)
	}

	// The staging path holds no material once nothing is pending.
	sec, err := c.Logical().ReadWithContext(t.Context(), "secret/data/keyturn-pending/"+string(id))
	if err != nil {
		t.Fatalf("read staging path: %v", err)
	}
	if d, _ := sec.Data["data"].(map[string]any); d["pending"] != nil || d["promote"] != nil {
		t.Fatalf("staging path still holds %v", keys(d))
	}
	md, err := c.KVv2("secret").GetMetadata(t.Context(), "keyturn-pending/"+string(id))
	if err != nil {
		t.Fatalf("staging metadata: %v", err)
	}
	if md.MaxVersions != 1 || len(md.Versions) != 1 {
		t.Fatalf("staging path keeps %d versions (max_versions %d), want 1", len(md.Versions), md.MaxVersions)
	}
}

func TestLedgerStaysSmall(t *testing.T) {
	srv := server(t)
	s, c := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "ledger")
	for _, tok := range []secret.VersionToken{"a", "b", "c", "d", "e"} {
		stage(t, s, id, tok, pw(string(tok)), nil)
		promote(t, s, id, tok)
	}
	md, err := c.KVv2("secret").GetMetadata(t.Context(), string(id))
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	ledger := parseLedger(md.CustomMetadata)
	if len(ledger) != 2 || ledger[md.CurrentVersion] == "" || ledger[md.CurrentVersion-1] == "" {
		t.Fatalf("ledger keeps KV versions %v at current %d, want only current and previous", keys(ledger), md.CurrentVersion)
	}
	vs, err := s.ListVersions(t.Context(), id)
	if err != nil || len(vs) != 2 || vs[0].Token != "d" || vs[1].Token != "e" {
		t.Fatalf("ListVersions gave %+v (%v), want d then e", vs, err)
	}
}

// TestCASOnTheConsumerPath races raw check-and-set writes on a consumer path the way two
// promoters would: exactly one wins each round, and the store sees the outside write.
func TestCASOnTheConsumerPath(t *testing.T) {
	srv := server(t)
	s, c := newStore(t, srv), srv.Client(t)
	id := uniqueID(t, "cas")
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	_, kv := consumer(t, c, id)

	const writers = 6
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.writeData(t.Context(), string(id), map[string]any{"password": "outside"}, kv)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !isCAS(err):
			t.Fatalf("writer %d: %v, want a lost check-and-set", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won one check-and-set round, want 1", wins)
	}

	// The outside write is not a Keyturn version: no current, and a pending version
	// staged now is promoted over it with check-and-set.
	_, _, err := s.Read(t.Context(), id, secret.StageCurrent)
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read(current) after an outside write: %v, want ErrNotFound", err)
	}
	stage(t, s, id, "v2", pw("two"), nil)
	promote(t, s, id, "v2")
	expectRead(t, s, id, secret.StageCurrent, "v2", pw("two"))
	if data, got := consumer(t, c, id); data["password"] != "two" || got != kv+2 {
		t.Fatalf("consumer path at KV version %d, want %d with v2", got, kv+2)
	}
}

func TestStageRefusals(t *testing.T) {
	srv := server(t)
	s := newStore(t, srv)
	id := uniqueID(t, "refuse")
	for name, req := range map[string]stores.StageRequest{
		"material and metadata share a field": {SecretID: id, Token: "v1", Material: pw("x"), Metadata: map[string]string{"password": "no"}},
		"metadata over the custom metadata limit": {SecretID: id, Token: "v1", Material: pw("x"),
			Metadata: map[string]string{"note": strings.Repeat("n", 600)}},
		"under the staging prefix": {SecretID: "keyturn-pending/x", Token: "v1", Material: pw("x")},
		"no material":              {SecretID: id, Token: "v1"},
		"control character token":  {SecretID: id, Token: "v\x01", Material: pw("x")},
	} {
		if _, err := s.StagePending(t.Context(), req); err == nil {
			t.Errorf("%s: StagePending succeeded", name)
		}
	}
	if _, err := s.ListVersions(t.Context(), id); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("a refused stage left versions behind: %v", err)
	}
}

func TestPathsMapConsumerPath(t *testing.T) {
	srv := server(t)
	id := uniqueID(t, "mapped")
	s := openStore(t, Config{
		Address: srv.Addr,
		Auth:    Auth{Token: secret.NewSensitive(srv.Token)},
		Paths:   map[secret.ID]string{id: "apps/" + string(id) + "/db"},
	})
	stage(t, s, id, "v1", pw("one"), nil)
	promote(t, s, id, "v1")
	if data, _ := consumer(t, srv.Client(t), secret.ID("apps/"+string(id)+"/db")); data["password"] != "one" {
		t.Fatal("the mapped consumer path does not hold the current version")
	}
}

func keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
