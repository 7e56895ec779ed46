package consumer

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// storeCase is one real store: the worker's side (st) and the consumer's (src), and how
// to take the store away.
type storeCase struct {
	st   stores.Store
	src  Source
	id   secret.ID
	down func()
}

// canary returns a password unique to the test, to look for in errors.
func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "consumer-canary-" + hex.EncodeToString(b)
}

// rotateTo stages a version as pending and promotes it, as the worker does.
func rotateTo(t *testing.T, st stores.Store, id secret.ID, token, password string) {
	t.Helper()
	_, err := st.StagePending(t.Context(), stores.StageRequest{
		SecretID: id,
		Token:    secret.VersionToken(token),
		Material: secret.Material{"password": secret.NewSensitive(password)},
		Metadata: map[string]string{"username": "app"},
	})
	if err != nil {
		t.Fatalf("StagePending %s: %v", token, err)
	}
	if err := st.Promote(t.Context(), id, secret.VersionToken(token)); err != nil {
		t.Fatalf("Promote %s: %v", token, err)
	}
}

// runStoreCase checks the consumer's whole life on a real store: it reads what the
// worker promoted, reads a new version after Invalidate, serves it stale while the store
// is down (saying so through OnStale) and, past MaxStale, fails with an error that names
// the secret and holds no material.
func runStoreCase(t *testing.T, sc storeCase) {
	c, clock, rec := newTestCache(t, sc.src, Options{
		TTL: time.Minute, Jitter: -1, MaxStale: 10 * time.Minute, ReadTimeout: 20 * time.Second,
	})
	first, second := canary(t), canary(t)

	// 1. The version the worker promoted is current.
	rotateTo(t, sc.st, sc.id, "v1", first)
	v, err := c.Get(t.Context(), sc.id)
	if err != nil {
		t.Fatalf("Get after the first promote: %v", err)
	}
	if v.Field("password").Reveal() != first || v.Version.Token != "v1" || v.Version.Number < 1 {
		t.Fatalf("Get after the first promote: version %d %q, or not its password", v.Version.Number, v.Version.Token)
	}
	if v.Version.Metadata["username"] != "app" {
		t.Fatalf("metadata = %v, want username app", v.Version.Metadata)
	}

	// 2. A new version is served from the cache until Invalidate, then read.
	rotateTo(t, sc.st, sc.id, "v2", second)
	if v, _ := c.Get(t.Context(), sc.id); v.Version.Token != "v1" {
		t.Fatalf("within the TTL Get read the store again (got %q)", v.Version.Token)
	}
	c.Invalidate(sc.id)
	firstNumber := v.Version.Number
	v, err = c.Get(t.Context(), sc.id)
	if err != nil {
		t.Fatalf("Get after Invalidate: %v", err)
	}
	// Stores number versions their own way (Vault counts its staging writes); each new
	// version's number is higher.
	if v.Field("password").Reveal() != second || v.Version.Token != "v2" || v.Version.Number <= firstNumber {
		t.Fatalf("Get after Invalidate: version %d %q, or not its password", v.Version.Number, v.Version.Token)
	}

	// 3. The store goes down: the last good value is served, and OnStale says so.
	sc.down()
	clock.Advance(2 * time.Minute)
	v, err = c.Get(t.Context(), sc.id)
	if err != nil {
		t.Fatalf("Get with the store down and a value 2m old: %v", err)
	}
	if v.Version.Token != "v2" || v.Field("password").Reveal() != second {
		t.Fatalf("stale Get returned %q, want v2", v.Version.Token)
	}
	calls := rec.staleCalls()
	if len(calls) != 1 || calls[0].id != sc.id || calls[0].age != 2*time.Minute || calls[0].err == nil {
		t.Fatalf("OnStale calls = %+v, want one for %s, 2m old, with the store's error", calls, sc.id)
	}
	checkNoMaterial(t, calls[0].err, first, second)

	// 4. Past MaxStale: an error naming the secret, without material.
	clock.Advance(10 * time.Minute)
	_, err = c.Get(t.Context(), sc.id)
	if err == nil {
		t.Fatal("Get past MaxStale returned a value")
	}
	if !strings.Contains(err.Error(), string(sc.id)) {
		t.Fatalf("error past MaxStale does not name the secret: %v", err)
	}
	checkNoMaterial(t, err, first, second)
	t.Logf("error past MaxStale: %v", err)
}

func checkNoMaterial(t *testing.T, err error, material ...string) {
	t.Helper()
	for _, m := range material {
		if strings.Contains(err.Error(), m) {
			t.Fatal("an error holds secret material")
		}
	}
}
