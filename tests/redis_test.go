package tests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

// redisAdmin is the least-privilege admin created on the tests' Redis nodes.
const (
	redisAdmin     = "keyturn_admin"
	redisAdminPass = "Redis-Admin-Canary-7f3e"
	redisUser      = "sessions"
)

// redisNodes starts two throwaway nodes (ACLs are per node) with the admin and the
// application user, which may read sessions:* keys.
func redisNodes(t *testing.T) []*redistest.Server {
	t.Helper()
	var nodes []*redistest.Server
	for range 2 {
		s, err := redistest.Start()
		if err != nil {
			needOrFail(t, err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		if err := s.CreateAdmin(context.Background(), redisAdmin, redisAdminPass); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUser(context.Background(), redisUser, "on", "~sessions:*", "+get", "+ping"); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, s)
	}
	return nodes
}

// needOrFail skips on a machine without redis-server, except under CI.
func needOrFail(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, redistest.ErrUnavailable) && !testdeps.InCI() {
		t.Skipf("skipping: %v (set CI=true to make this a failure)", err)
	}
	t.Fatalf("start Redis: %v", err)
}

// redisEntry is the inventory entry of e2e/redis on nodes, with extra lines in its block.
func redisEntry(nodes []*redistest.Server, extra string) string {
	addrs := make([]string, len(nodes))
	for i, s := range nodes {
		addrs[i] = s.Addr
	}
	return fmt.Sprintf(`  - id: e2e/redis
    kind: redis
    grace: 0s
    redis:
      nodes: [%s]
      user: %s
      admin: {username: %s, password: "file:e2e/redis-admin#password"}
%s`, strings.Join(addrs, ", "), redisUser, redisAdmin, extra)
}

func seedRedisAdmin(ctx context.Context, store *file.Store) error {
	_, err := store.Put(ctx, "e2e/redis-admin", secret.Material{"password": secret.NewSensitive(redisAdminPass)}, nil)
	return err
}

// redisLogin reports whether password logs in as the user on every node (nil), or the
// first node's refusal.
func redisLogin(t *testing.T, nodes []*redistest.Server, password string) error {
	t.Helper()
	for _, s := range nodes {
		c := s.Login(redisUser, password)
		err := c.Ping(t.Context()).Err()
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr, err)
		}
	}
	return nil
}

// redisHashes returns how many passwords the user holds on each node.
func redisHashes(t *testing.T, nodes []*redistest.Server) []int {
	t.Helper()
	var out []int
	for _, s := range nodes {
		c := s.Super()
		res, err := c.Do(t.Context(), "ACL", "GETUSER", redisUser).Result()
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		fields := res.([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "passwords" {
				out = append(out, len(fields[i+1].([]any)))
			}
		}
	}
	return out
}

func redisCase(t *testing.T) kindCase {
	nodes := redisNodes(t)
	return kindCase{
		id:    "e2e/redis",
		extra: redisEntry(nodes, "      check: [GET, \"sessions:health\"]\n"),
		seed:  seedRedisAdmin,
		works: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			if err := redisLogin(t, nodes, m.Get("password").Reveal()); err != nil {
				t.Fatalf("the current password is refused: %v", err)
			}
			if got := redisHashes(t, nodes); !slices.Equal(got, []int{1, 1}) && !slices.Equal(got, []int{2, 2}) {
				t.Fatalf("the user holds %v passwords on the nodes; want the same one or two on each", got)
			}
		},
		refused: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			for _, s := range nodes {
				if err := redisLogin(t, []*redistest.Server{s}, m.Get("password").Reveal()); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
					t.Fatalf("the revoked password on %s: %v, want WRONGPASS", s.Addr, err)
				}
			}
			if got := redisHashes(t, nodes); !slices.Equal(got, []int{1, 1}) {
				t.Fatalf("after the revoke the user holds %v passwords on the nodes, want one on each", got)
			}
		},
	}
}

// TestRedisRollbackLeavesNothing fails a rotation's Test (the user may no longer run the
// check on one node) and checks the rollback from what the nodes show: the current password
// still works on both nodes and the new one is gone from both.
func TestRedisRollbackLeavesNothing(t *testing.T) {
	nodes := redisNodes(t)
	env := testenv.New(t, testenv.Options{Extra: redisEntry(nodes, "      check: [GET, \"sessions:health\"]\n"), Seed: seedRedisAdmin})
	if code, out := keyturn(t, env, "rotate", "e2e/redis", "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, "e2e/redis")

	// Break the next rotation: the user loses the right to run the check on one node.
	if err := nodes[1].SetUser(t.Context(), redisUser, "-get"); err != nil {
		t.Fatal(err)
	}
	code, out := keyturn(t, env, "rotate", "e2e/redis", "--wait")
	if code == 0 || !strings.Contains(out, "outcome:  rolled_back") {
		t.Fatalf("rotation with a check the user may not run exited %d, want a rollback:\n%s", code, out)
	}
	v, m := current(t, env, "e2e/redis")
	if v.Token != v1.Token {
		t.Fatalf("current is version %d after the rollback, want %d", v.Number, v1.Number)
	}
	if err := redisLogin(t, nodes, m.Get("password").Reveal()); err != nil || m.Get("password") != m1.Get("password") {
		t.Fatalf("the kept password after the rollback: %v", err)
	}
	if got := redisHashes(t, nodes); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("after the rollback the user holds %v passwords on the nodes, want the kept one only", got)
	}
}

// TestRedisIncidentContains contains e2e/redis while a consumer holds a connection with
// the current password: every old password is refused, the connection is ended, and
// the rotation that follows leaves a new password working on both nodes.
func TestRedisIncidentContains(t *testing.T) {
	nodes := redisNodes(t)
	env := testenv.New(t, testenv.Options{Extra: redisEntry(nodes, ""), Seed: seedRedisAdmin})
	for range 2 {
		if code, out := keyturn(t, env, "rotate", "e2e/redis", "--wait"); code != 0 {
			t.Fatalf("rotation exited %d:\n%s", code, out)
		}
	}
	_, leaked := current(t, env, "e2e/redis")
	attacker := nodes[1].Login(redisUser, leaked.Get("password").Reveal())
	defer attacker.Close()
	if err := attacker.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	code, out := keyturn(t, env, "incident", "start", "--id", "redis-leak", "--select", "id=e2e/redis", "--mode", "contain", "--reason", "drill", "--yes")
	if code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	if err := redisLogin(t, nodes, leaked.Get("password").Reveal()); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("the leaked password after containment: %v, want WRONGPASS", err)
	}
	c := nodes[1].Super()
	list, err := c.ClientList(t.Context()).Result()
	_ = c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(list, "user="+redisUser+" ") {
		t.Errorf("a connection of %s survived containment:\n%s", redisUser, list)
	}
	_, fresh := current(t, env, "e2e/redis")
	if err := redisLogin(t, nodes, fresh.Get("password").Reveal()); err != nil {
		t.Fatalf("the password made after containment: %v", err)
	}
	if got := redisHashes(t, nodes); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("after the incident the user holds %v passwords on the nodes, want the new one only", got)
	}
	if strings.Contains(out+env.Logs.String(), leaked.Get("password").Reveal()) || strings.Contains(out+env.Logs.String(), redisAdminPass) {
		t.Error("the incident's output or the logs hold a password")
	}
}

// TestRedisWorkerKilledMidCreate kills the worker (SIGKILL) while Create has added the new
// password on the first node and hangs on the second (paused), then starts a new worker:
// the rotation completes once, with the material the first attempt recorded, and each
// node holds the new password and nothing else: no orphan of the killed attempt.
func TestRedisWorkerKilledMidCreate(t *testing.T) {
	nodes := redisNodes(t)
	env := testenv.New(t, testenv.Options{NoWorker: true, Extra: redisEntry(nodes, "      timeout: 20s\n"), Seed: seedRedisAdmin})
	ctx := context.Background()
	const id = secret.ID("e2e/redis")
	first := workerProcess(t, env)
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)

	if err := nodes[1].Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = nodes[1].Resume()
		}
	}()
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "redis"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the new password on the first node", func() bool {
		return redisHashes(t, nodes[:1])[0] == 2
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	if err := nodes[1].Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true

	finishWithNewWorker(t, env, run)
	v2, m2 := current(t, env, id)
	if v2.Number != v1.Number+1 {
		t.Fatalf("current is version %d, want %d: the killed attempt's version", v2.Number, v1.Number+1)
	}
	if err := redisLogin(t, nodes, m2.Get("password").Reveal()); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if err := redisLogin(t, nodes, m1.Get("password").Reveal()); err == nil {
		t.Fatal("the old password still logs in after the rotation")
	}
	if got := redisHashes(t, nodes); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("after the rotation the user holds %v passwords on the nodes, want the new one only: an orphan", got)
	}
	if attempts := maxAttempt(history(t, env, run.GetID(), run.GetRunID())); attempts < 2 {
		t.Fatalf("expected a retried activity after the kill, max attempt was %d", attempts)
	}
}
