package redisacl

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// servers are the package's two throwaway nodes: ACLs are per node, so every test runs
// on both.
var servers []*redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &servers, 2)) }

const adminName = "keyturn_admin"

var (
	seq       atomic.Int64
	adminOnce sync.Once
	adminPass = "admin-" + fmt.Sprint(time.Now().UnixNano())
	adminErr  error
)

func unique(prefix string) string { return fmt.Sprintf("%s_%d", prefix, seq.Add(1)) }

// nodes returns the servers, with the least-privilege admin created on each.
func nodes(t *testing.T) []*redistest.Server {
	t.Helper()
	ss := redistest.Need(t, servers)
	adminOnce.Do(func() {
		for _, s := range ss {
			if adminErr = s.CreateAdmin(context.Background(), adminName, adminPass); adminErr != nil {
				return
			}
		}
	})
	if adminErr != nil {
		t.Fatalf("create admin: %v", adminErr)
	}
	return ss
}

// newUser creates an application user on every node (no password, may GET app:*) and
// returns a configuration for it.
func newUser(t *testing.T) Config {
	t.Helper()
	ss := nodes(t)
	user := unique("app")
	var addrs []string
	for _, s := range ss {
		if err := s.SetUser(t.Context(), user, "on", "~app:*", "+get", "+ping"); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, s.Addr)
	}
	t.Cleanup(func() {
		for _, s := range ss {
			c := s.Super()
			_ = c.Do(context.Background(), "ACL", "DELUSER", user).Err()
			_ = c.Close()
		}
	})
	return Config{Nodes: addrs, User: user, AdminUser: adminName, AdminPassword: secret.NewSensitive(adminPass), Timeout: 2 * time.Second}
}

func mustNew(t *testing.T, cfg Config) *Rotator {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// login tries the user's password on one node and runs PING.
func login(t *testing.T, s *redistest.Server, user, password string) error {
	t.Helper()
	c := s.Login(user, password)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// version builds the version a store would record for g.
func version(n int, g rotators.Generated) secret.Version {
	return secret.Version{SecretID: "test/redis", Token: secret.VersionToken(fmt.Sprintf("t/%d", n)), Number: n,
		Stages: []secret.Stage{secret.StagePending}, CreatedAt: time.Now(), Metadata: g.Metadata}
}

// generate makes and applies version n.
func generate(t *testing.T, r *Rotator, n int, apply bool) (secret.Version, secret.Material) {
	t.Helper()
	g, err := r.Generate(t.Context(), rotators.GenerateRequest{SecretID: "test/redis"})
	if err != nil {
		t.Fatal(err)
	}
	v := version(n, g)
	if apply {
		if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: g.Material}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return v, g.Material
}

func pw(m secret.Material) string { return m.Get(FieldPassword).Reveal() }

// wantLogins checks on every node that the password logs in (ok) or is refused.
func wantLogins(t *testing.T, user, password string, ok bool) {
	t.Helper()
	for _, s := range servers {
		err := login(t, s, user, password)
		switch {
		case ok && err != nil:
			t.Errorf("login as %s on %s: %v, want success", user, s.Addr, err)
		case !ok && (err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS")):
			t.Errorf("login as %s on %s: %v, want WRONGPASS", user, s.Addr, err)
		}
	}
}
