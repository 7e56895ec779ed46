package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// gatedRun rotates id once (nothing to revoke), opens a consumer connection with that
// version through open, rotates again and waits until the revoke gate holds. It checks
// that the held status names the connection (its user, and what names its client), then
// closes the connection and checks that the revoke follows.
func gatedRun(t *testing.T, env *testenv.Env, id secret.ID, kind string, open func(v secret.Version, m secret.Material) (user string, close func()), works func(v secret.Version, m secret.Material) error) {
	t.Helper()
	ctx := context.Background()
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)
	user, closeConn := open(v1, m1)
	run, held := rotateUntilHeld(t, env, id, kind)
	g := held.RevokeGate
	if g == nil || g.State != workflows.GateHeld || len(g.Uses) != 1 || g.Uses[0].User != user || !strings.HasPrefix(g.Uses[0].Client, "127.0.0.1:") {
		t.Fatalf("the held gate must name the one connection of %s: %+v", user, g)
	}
	if err := works(v1, m1); err != nil {
		t.Fatalf("the old credential must work while the revoke is held: %v", err)
	}
	closeConn()
	var res workflows.RotateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated || res.RevokeGate == nil || res.RevokeGate.State != workflows.GateIdle {
		t.Fatalf("result %+v", res)
	}
	if err := works(v1, m1); err == nil {
		t.Fatal("the old credential still works after the gate let the revoke go")
	}
}

const gateEntry = "    revoke_gate: {wait: until_unused, max_wait: 10s, then: hold, poll: 5s}\n"

// TestRevokeGateOnRedis: a connection opened with the old password holds the revoke
// (CLIENT LIST, by user and age) until it closes.
func TestRevokeGateOnRedis(t *testing.T) {
	nodes := redisNodes(t)
	env := testenv.New(t, testenv.Options{Extra: redisEntry(nodes, "") + gateEntry, Seed: seedRedisAdmin})
	gatedRun(t, env, "e2e/redis", "redis", func(_ secret.Version, m secret.Material) (string, func()) {
		c := nodes[1].Login(redisUser, m.Get("password").Reveal())
		if err := c.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // CLIENT LIST counts age in whole seconds
		return redisUser, func() { _ = c.Close() }
	}, func(_ secret.Version, m secret.Material) error {
		return redisLogin(t, nodes, m.Get("password").Reveal())
	})
}

// TestRevokeGateOnMariaDB: a session of the old twin holds the revoke (the processlist)
// until it closes.
func TestRevokeGateOnMariaDB(t *testing.T) {
	s := mariadbServer(t)
	env := testenv.New(t, testenv.Options{Extra: mariadbEntry(s, "") + gateEntry, Seed: seedMariaDBAdmin})
	gatedRun(t, env, "e2e/mariadb", "mariadb", func(v secret.Version, m secret.Material) (string, func()) {
		db := s.Open(v.Metadata["username"], m.Get("password").Reveal())
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		return v.Metadata["username"], func() { _ = conn.Close(); _ = db.Close() }
	}, func(v secret.Version, m secret.Material) error {
		return mariadbLogin(t, s, v, m)
	})
}
