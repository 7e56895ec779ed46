package redisconsumer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/redisacl"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

var servers []*redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &servers, 1)) }

func TestNamesMatchTheRotator(t *testing.T) {
	if FieldPassword != redisacl.FieldPassword || MetadataUsername != redisacl.MetadataUsername {
		t.Fatal("the field or metadata key differs from rotators/redisacl's")
	}
}

// TestClientFollowsTheRotation rotates a real user with the redis rotator while a client
// logs in through the hook: during the grace both passwords work and the client needs no
// retry; after a containment, which ends its connection and removes every password, the
// client's next command fails its login once with the cached password, is retried with
// a fresh read, and succeeds.
func TestClientFollowsTheRotation(t *testing.T) {
	s := redistest.Need(t, servers)[0]
	const admin, adminPass, user = "keyturn", "Admin-Pass-For-Redisconsumer", "orders"
	if err := s.CreateAdmin(t.Context(), admin, adminPass); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUser(t.Context(), user, "on", "~orders:*", "+get", "+ping"); err != nil {
		t.Fatal(err)
	}
	rot, err := redisacl.New(redisacl.Config{Nodes: []string{s.Addr}, User: user, AdminUser: admin, AdminPassword: secret.NewSensitive(adminPass)})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := consumer.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := consumer.New(src, consumer.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const id = secret.ID("prod/orders/redis")
	var made []string
	rotate := func(n int, current *secret.Version) secret.Version {
		t.Helper()
		g, err := rot.Generate(t.Context(), rotators.GenerateRequest{SecretID: id, Current: current})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, g.Material.Get(FieldPassword).Reveal())
		token := secret.VersionToken(fmt.Sprintf("v%d", n))
		v, err := st.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: token, Material: g.Material, Metadata: g.Metadata})
		if err != nil {
			t.Fatal(err)
		}
		if err := rot.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: g.Material}); err != nil {
			t.Fatal(err)
		}
		if err := st.Promote(t.Context(), id, token); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := rotate(1, nil)

	var retries atomic.Int64
	var retryErrs []string
	hook := New(cache, id, Options{OnRetry: func(got secret.ID, err error) {
		retries.Add(1)
		retryErrs = append(retryErrs, fmt.Sprintf("%v %+v", err, err))
		if got != id || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("OnRetry(%s, %v): want %s and a WRONGPASS refusal", got, err, id)
		}
	}})
	opts := &redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true}
	hook.Configure(opts)
	client := redis.NewClient(opts)
	client.AddHook(hook)
	defer client.Close()
	whoami := func() string {
		t.Helper()
		name, err := client.Do(t.Context(), "ACL", "WHOAMI").Text()
		if err != nil {
			t.Fatalf("a command through the hook: %v", err)
		}
		return name
	}
	if err := s.SetUser(t.Context(), user, "+acl|whoami"); err != nil {
		t.Fatal(err)
	}
	if got := whoami(); got != user {
		t.Fatalf("logged in as %q, want %q from the secret's metadata", got, user)
	}

	// A rotation within the grace: the cache still holds v1, which still works.
	v2 := rotate(2, &v1)
	client.Close()
	client = redis.NewClient(opts)
	client.AddHook(hook)
	if whoami(); retries.Load() != 0 {
		t.Fatalf("%d retries while the old password still works, want 0", retries.Load())
	}

	// Containment removes every password and ends the connection; the incident's new
	// version is promoted in the store.
	if err := rot.Revoke(t.Context(), rotators.RevokeRequest{Version: v2, EndSessions: true}); err != nil {
		t.Fatal(err)
	}
	rotate(3, &v2)
	if whoami(); retries.Load() != 1 {
		t.Fatalf("%d retries after the containment, want 1: %q", retries.Load(), retryErrs)
	}
	for _, msg := range retryErrs {
		for _, p := range append(made, adminPass) {
			if strings.Contains(msg, p) {
				t.Fatal("an error given to OnRetry holds a password")
			}
		}
	}

	// A refusal that survives a fresh read is an error naming the secret.
	if err := s.SetUser(context.Background(), user, "resetpass"); err != nil {
		t.Fatal(err)
	}
	client.Close()
	client = redis.NewClient(opts)
	client.AddHook(hook)
	err = client.Ping(t.Context()).Err()
	if err == nil || !strings.Contains(err.Error(), "read fresh from the store after a first refusal") || !strings.Contains(err.Error(), string(id)) {
		t.Fatalf("Ping with every password gone: %v", err)
	}
}
