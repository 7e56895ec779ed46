package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/mariadbtest"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

const (
	mariadbAdmin     = "keyturn_admin"
	mariadbAdminPass = "Mariadb-Admin-Canary-2b8d"
	mariadbRole      = "shop"
)

// mariadbServer starts a throwaway server with a role that may read shop.items and the
// least-privilege admin holding it WITH ADMIN OPTION.
func mariadbServer(t *testing.T) *mariadbtest.Server {
	t.Helper()
	s, err := mariadbtest.Start()
	if errors.Is(err, mariadbtest.ErrUnavailable) && !testdeps.InCI() {
		t.Skipf("skipping: %v (set CI=true to make this a failure)", err)
	}
	if err != nil {
		t.Fatalf("start MariaDB: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.Exec(t.Context(), "CREATE DATABASE shop", "CREATE TABLE shop.items (x int)",
		"CREATE ROLE "+mariadbRole, "GRANT SELECT ON shop.* TO "+mariadbRole); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdmin(t.Context(), mariadbAdmin, mariadbAdminPass, mariadbRole); err != nil {
		t.Fatal(err)
	}
	return s
}

// mariadbEntry is the inventory entry of e2e/mariadb on s, with extra lines in its block.
func mariadbEntry(s *mariadbtest.Server, extra string) string {
	return fmt.Sprintf(`  - id: e2e/mariadb
    kind: mariadb
    grace: 0s
    mariadb:
      host: %s
      port: %d
      tls: disable
      role: %s
      admin: {username: %s, password: "file:e2e/mariadb-admin#password"}
%s`, s.Host, s.Port, mariadbRole, mariadbAdmin, extra)
}

func seedMariaDBAdmin(ctx context.Context, store *file.Store) error {
	_, err := store.Put(ctx, "e2e/mariadb-admin", secret.Material{"password": secret.NewSensitive(mariadbAdminPass)}, nil)
	return err
}

// mariadbLogin logs in as a version's account and reads shop.items through the role.
func mariadbLogin(t *testing.T, s *mariadbtest.Server, v secret.Version, m secret.Material) error {
	t.Helper()
	db := s.Open(v.Metadata["username"], m.Get("password").Reveal())
	defer db.Close()
	var n int
	return db.QueryRowContext(t.Context(), "SELECT count(*) FROM shop.items").Scan(&n)
}

func mariadbCase(t *testing.T) kindCase {
	s := mariadbServer(t)
	return kindCase{
		id:    "e2e/mariadb",
		extra: mariadbEntry(s, "      check_query: SELECT count(*) FROM shop.items\n"),
		seed:  seedMariaDBAdmin,
		works: func(t *testing.T, v secret.Version, m secret.Material) {
			t.Helper()
			if err := mariadbLogin(t, s, v, m); err != nil {
				t.Fatalf("the current password of %s: %v", v.Metadata["username"], err)
			}
		},
		refused: func(t *testing.T, v secret.Version, m secret.Material) {
			t.Helper()
			if err := mariadbLogin(t, s, v, m); err == nil || !strings.Contains(err.Error(), "locked") {
				t.Fatalf("the revoked account %s: %v, want it locked", v.Metadata["username"], err)
			}
			for _, m := range []secret.Material{m} {
				if strings.Contains(s.GeneralLog(), m.Get("password").Reveal()) {
					t.Fatal("a password reached the general log")
				}
			}
		},
	}
}

// TestMariaDBRollbackLocksTheTwin fails a rotation's Test (the role lost the privilege
// the check needs) and checks the rollback from what the server shows: the current twin
// still works and the twin the rotation re-keyed is locked again.
func TestMariaDBRollbackLocksTheTwin(t *testing.T) {
	s := mariadbServer(t)
	env := testenv.New(t, testenv.Options{Extra: mariadbEntry(s, "      check_query: SELECT count(*) FROM shop.items\n"), Seed: seedMariaDBAdmin})
	if code, out := keyturn(t, env, "rotate", "e2e/mariadb", "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, "e2e/mariadb")
	// The next rotation is broken the way a DBA would break it: the role loses SELECT.
	// The current twin is then refused by the check too, but its login still works.
	if err := s.Exec(t.Context(), "REVOKE SELECT ON shop.* FROM "+mariadbRole); err != nil {
		t.Fatal(err)
	}
	code, out := keyturn(t, env, "rotate", "e2e/mariadb", "--wait")
	if code == 0 || !strings.Contains(out, "outcome:  rolled_back") {
		t.Fatalf("rotation with a failing check exited %d, want a rollback:\n%s", code, out)
	}
	// The new twin logged in and failed the check: Create had unlocked it, so the lock
	// found below is the rollback's.
	if !strings.Contains(out, "check failed") {
		t.Fatalf("the rotation must fail at the check, after the new twin logged in:\n%s", out)
	}
	if v, _ := current(t, env, "e2e/mariadb"); v.Token != v1.Token {
		t.Fatalf("current is version %d after the rollback, want %d", v.Number, v1.Number)
	}
	if err := s.Exec(t.Context(), "GRANT SELECT ON shop.* TO "+mariadbRole); err != nil {
		t.Fatal(err)
	}
	if err := mariadbLogin(t, s, v1, m1); err != nil {
		t.Fatalf("the kept twin after the rollback: %v", err)
	}
	other := mariadbRole + "_b"
	if v1.Metadata["username"] == other {
		other = mariadbRole + "_a"
	}
	db := s.Open("", "")
	defer db.Close()
	var locked string
	if err := db.QueryRowContext(t.Context(), "SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv WHERE User = ?", other).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	if locked != "true" && locked != "1" {
		t.Fatalf("the twin the rolled-back rotation re-keyed (%s) is not locked again: account_locked=%s", other, locked)
	}
}

// TestMariaDBIncidentContains contains e2e/mariadb while a session holds the current
// twin: its account is locked, the session ended, and the rotation that follows leaves
// the other twin working.
func TestMariaDBIncidentContains(t *testing.T) {
	s := mariadbServer(t)
	env := testenv.New(t, testenv.Options{Extra: mariadbEntry(s, ""), Seed: seedMariaDBAdmin})
	for range 2 {
		if code, out := keyturn(t, env, "rotate", "e2e/mariadb", "--wait"); code != 0 {
			t.Fatalf("rotation exited %d:\n%s", code, out)
		}
	}
	leakedV, leaked := current(t, env, "e2e/mariadb")
	db := s.Open(leakedV.Metadata["username"], leaked.Get("password").Reveal())
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, out := keyturn(t, env, "incident", "start", "--id", "mariadb-leak", "--select", "id=e2e/mariadb", "--mode", "contain", "--reason", "drill", "--yes")
	if code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	if err := conn.PingContext(t.Context()); err == nil {
		t.Error("the attacker's session survived containment")
	}
	if err := mariadbLogin(t, s, leakedV, leaked); err == nil {
		t.Fatal("the leaked password still logs in after containment")
	}
	fv, fresh := current(t, env, "e2e/mariadb")
	if fv.Number <= leakedV.Number {
		t.Fatal("the incident made no new version")
	}
	if err := mariadbLogin(t, s, fv, fresh); err != nil {
		t.Fatalf("the password made after containment: %v", err)
	}
	log := s.GeneralLog()
	for _, p := range []string{leaked.Get("password").Reveal(), fresh.Get("password").Reveal()} {
		if strings.Contains(log, p) || strings.Contains(out+env.Logs.String(), p) {
			t.Error("a password reached the general log, the output or the logs")
		}
	}
}

// TestMariaDBWorkerKilledMidCreate kills the worker (SIGKILL) while Create waits on the
// server (a global read lock the test holds blocks account changes), releases the lock
// and starts a new worker: the rotation completes once, with the password the first
// attempt recorded, the old twin is locked, and the server holds the two twins and no
// other account of the role: no orphan.
func TestMariaDBWorkerKilledMidCreate(t *testing.T) {
	s := mariadbServer(t)
	env := testenv.New(t, testenv.Options{NoWorker: true, Extra: mariadbEntry(s, "      connect_timeout: 30s\n"), Seed: seedMariaDBAdmin})
	ctx := context.Background()
	const id = secret.ID("e2e/mariadb")
	first := workerProcess(t, env)
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	v1, m1 := current(t, env, id)

	root := s.Open("", "")
	defer root.Close()
	lock, err := root.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		t.Fatal(err)
	}
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "mariadb"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	var pending secret.Version
	waitFor(t, 30*time.Second, "the pending version to be staged", func() bool {
		v, _, err := env.Store.Read(ctx, id, secret.StagePending)
		pending = v
		return err == nil
	})
	waitFor(t, 30*time.Second, "Create to wait on the read lock", func() bool {
		var n int
		err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND (STATE LIKE '%backup lock%' OR STATE LIKE '%global read lock%')", mariadbAdmin).Scan(&n)
		return err == nil && n > 0
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}

	finishWithNewWorker(t, env, run)
	v2, m2 := current(t, env, id)
	if v2.Token != pending.Token || v2.Number != v1.Number+1 {
		t.Fatalf("current is version %d (%s), want the pre-crash pending version %d (%s)", v2.Number, v2.Token, pending.Number, pending.Token)
	}
	if err := mariadbLogin(t, s, v2, m2); err != nil {
		t.Fatalf("the new twin: %v", err)
	}
	if err := mariadbLogin(t, s, v1, m1); err == nil {
		t.Fatal("the old twin still logs in after the rotation")
	}
	var accounts int
	if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.global_priv WHERE User LIKE ?", mariadbRole+"%").Scan(&accounts); err != nil {
		t.Fatal(err)
	}
	if accounts != 3 { // the role and its two twins
		t.Fatalf("the server holds %d accounts named %s*, want the role and its two twins", accounts, mariadbRole)
	}
	if attempts := maxAttempt(history(t, env, run.GetID(), run.GetRunID())); attempts < 2 {
		t.Fatalf("expected a retried activity after the kill, max attempt was %d", attempts)
	}
}
