package tests

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/awssm"
	"github.com/keyturn/keyturn/stores/vaultkv"
	"github.com/keyturn/keyturn/workflows"
)

// storeUnderTest is a real store reached through a proxy the test can cut, with what a
// consumer would read from it.
type storeUnderTest struct {
	kind     string
	backends binding.Backends
	adminRef string
	seed     func(ctx context.Context, password secret.Sensitive) error
	// consumer reads the password the way consumers do: the consumer path in Vault,
	// AWSCURRENT in Secrets Manager. Empty when there is none yet.
	consumer func(ctx context.Context, id secret.ID) (string, error)
	// platform reads the current value with the platform's own tool (the aws command
	// line, Vault's HTTP API) and returns the JSON object consumers get.
	platform func(t *testing.T, id secret.ID) []byte
	proxy    *testenv.Proxy
}

func vaultStore(t *testing.T) storeUnderTest {
	srv := vaulttest.Start(t, vaulttest.Options{})
	u, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	client := srv.Client(t)
	return storeUnderTest{
		kind: "vault",
		backends: binding.Backends{Vault: func(ctx context.Context, mount string) (binding.FieldStore, error) {
			s, err := vaultkv.New(ctx, vaultkv.Config{Address: "http://" + proxy.Addr(), Mount: mount, Auth: vaultkv.Auth{Token: secret.NewSensitive(srv.Token)}, Timeout: 3 * time.Second})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			return s, err
		}},
		adminRef: "vault:secret/admin/e2e",
		seed: func(ctx context.Context, pw secret.Sensitive) error {
			_, err := client.KVv2("secret").Put(ctx, "admin/e2e", map[string]any{"password": pw.Reveal()})
			return err
		},
		consumer: func(ctx context.Context, id secret.ID) (string, error) {
			kv, err := client.KVv2("secret").Get(ctx, string(id))
			if err != nil {
				if strings.Contains(err.Error(), "secret not found") {
					return "", nil
				}
				return "", err
			}
			pw, _ := kv.Data["password"].(string)
			return pw, nil
		},
		platform: vaultHTTPRead(srv.Addr, srv.Token),
		proxy:    proxy,
	}
}

func awsStore(t *testing.T) storeUnderTest {
	m := mototest.Start(t)
	u, err := url.Parse(m.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	direct := secretsmanager.NewFromConfig(m.AWSConfig(context.Background()))
	viaProxy := m.AWSConfig(context.Background())
	viaProxy.BaseEndpoint = aws.String("http://" + proxy.Addr())
	viaProxy.RetryMaxAttempts = 1
	return storeUnderTest{
		kind: "awssm",
		backends: binding.Backends{AWSSM: func(ctx context.Context) (binding.FieldStore, error) {
			return awssm.NewFromConfig(viaProxy, awssm.Config{})
		}},
		adminRef: "awssm:admin/e2e",
		seed: func(ctx context.Context, pw secret.Sensitive) error {
			body, err := json.Marshal(map[string]string{"password": pw.Reveal()})
			if err != nil {
				return err
			}
			_, err = direct.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("admin/e2e"), SecretString: aws.String(string(body))})
			return err
		},
		consumer: func(ctx context.Context, id secret.ID) (string, error) {
			out, err := direct.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(string(id)), VersionStage: aws.String("AWSCURRENT")})
			if err != nil {
				if strings.Contains(err.Error(), "ResourceNotFound") {
					return "", nil
				}
				return "", err
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
				return "", err
			}
			pw, _ := v["password"].(string)
			return pw, nil
		},
		platform: awsCLIRead(m.Endpoint),
		proxy:    proxy,
	}
}

func storeEnv(t *testing.T, st storeUnderTest, checkQuery string) *testenv.Env {
	return testenv.New(t, testenv.Options{
		Secrets:   []demo.Secret{{ID: "e2e/app", Strategy: "alternating", Grace: "0s", Store: st.kind, AdminPassword: st.adminRef, CheckQuery: checkQuery}},
		Backends:  st.backends,
		SeedAdmin: st.seed,
	})
}

// watch records every distinct password consumers read while f runs.
func watch(t *testing.T, st storeUnderTest, id secret.ID, f func()) []string {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		seen []string
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for ctx.Err() == nil {
			pw, err := st.consumer(ctx, id)
			if err == nil && pw != "" {
				mu.Lock()
				if len(seen) == 0 || seen[len(seen)-1] != pw {
					seen = append(seen, pw)
				}
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	f()
	cancel()
	wg.Wait()
	return seen
}

// TestRotateWithEachStore rotates a real Postgres role with its versions in Vault KV v2
// and in AWS Secrets Manager (moto), the admin password resolved from the same store.
// Consumers, reading the way they do, see the old credential, then the new one, and never
// a pending one: not during a rotation, and not from one that fails its test.
func TestRotateWithEachStore(t *testing.T) {
	for name, open := range map[string]func(*testing.T) storeUnderTest{"vault": vaultStore, "awssm": awsStore} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			env := storeEnv(t, st, "SELECT count(*) FROM orders")
			ctx := context.Background()
			const id = secret.ID("e2e/app")

			if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
				t.Fatalf("first rotation exited %d:\n%s", code, out)
			}
			first, err := st.consumer(ctx, id)
			if err != nil || first == "" {
				t.Fatalf("consumers read nothing after the first rotation: %v", err)
			}
			if err := login(ctx, env, "app_a", secret.NewSensitive(first)); err != nil {
				t.Fatalf("the credential consumers read does not log in: %v", err)
			}

			var out string
			seen := watch(t, st, id, func() {
				var code int
				code, out = keyturn(t, env, "rotate", string(id), "--wait")
				if code != 0 {
					t.Fatalf("second rotation exited %d:\n%s", code, out)
				}
			})
			second, err := st.consumer(ctx, id)
			if err != nil || second == "" || second == first {
				t.Fatalf("consumers must read a new credential after the second rotation: %v", err)
			}
			if len(seen) > 2 || seen[0] != first || seen[len(seen)-1] != second {
				t.Fatalf("consumers saw %d values during the rotation; want the old one, then the new one", len(seen))
			}
			if err := login(ctx, env, "app_b", secret.NewSensitive(second)); err != nil {
				t.Fatalf("new credential does not log in: %v", err)
			}
			if err := login(ctx, env, "app_a", secret.NewSensitive(first)); err == nil {
				t.Fatal("the old credential still logs in")
			}

			// A rotation that fails its test never shows its credential to consumers.
			superExec(t, env, "CREATE TABLE vault_only (x int)")
			env.Inventory.Secrets[0].Postgres.CheckQuery = "SELECT count(*) FROM vault_only"
			seen = watch(t, st, id, func() {
				if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code == 0 || !strings.Contains(out, "rolled_back") {
					t.Fatalf("a rotation with a failing check must roll back, exited %d:\n%s", code, out)
				}
			})
			if len(seen) != 1 || seen[0] != second {
				t.Fatalf("consumers saw %d values during a failed rotation; want only the current one", len(seen))
			}

			// No password reached the worker's logs or the history, through either store.
			h, err := protojson.Marshal(decodedHistory(t, env, workflows.RotateWorkflowID(id), ""))
			if err != nil {
				t.Fatal(err)
			}
			for what, pw := range map[string]string{"first password": first, "second password": second} {
				if strings.Contains(env.Logs.String(), pw) || strings.Contains(string(h), pw) {
					t.Errorf("the %s appears in the logs or the history", what)
				}
			}
		})
	}
}

// TestStoreOutageDuringPromote cuts the store off while the new version is being tested,
// so Promote meets an unreachable store, and brings it back a few seconds later: the
// bounded retries carry the rotation through, once.
func TestStoreOutageDuringPromote(t *testing.T) {
	for name, open := range map[string]func(*testing.T) storeUnderTest{"vault": vaultStore, "awssm": awsStore} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			env, run, first := cutDuringTest(t, st)
			ctx := context.Background()
			const id = secret.ID("e2e/app")
			time.Sleep(4 * time.Second)
			if got, _ := st.consumer(ctx, id); got != first {
				t.Fatal("consumers must keep reading the old credential while the store is cut off mid-rotation")
			}
			st.proxy.Restore()

			waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			var res workflows.RotateResult
			if err := run.Get(waitCtx, &res); err != nil || res.Outcome != workflows.OutcomeRotated {
				t.Fatalf("rotation after the outage: %v (outcome %q)", err, res.Outcome)
			}
			second, _ := st.consumer(ctx, id)
			if second == "" || second == first {
				t.Fatal("consumers must read the new credential after the rotation")
			}
			if err := login(ctx, env, "app_b", secret.NewSensitive(second)); err != nil {
				t.Fatalf("new credential does not log in: %v", err)
			}
			if !retriedAStep(history(t, env, run.GetID(), run.GetRunID())) {
				t.Fatal("the history shows no retried step: the outage did not hit the rotation")
			}
		})
	}
}

// TestStoreOutageThatLasts cuts the store off while the new version is tested and keeps it
// off past the bounded retries of Promote and of the rollback: the rotation then says the
// rollback is outstanding and keeps trying, consumers still read the old credential, which
// still logs in. Once the store answers again, the rollback finishes: no pending version is
// left and the new twin can no longer log in.
func TestStoreOutageThatLasts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about five minutes of bounded retries per store")
	}
	for name, open := range map[string]func(*testing.T) storeUnderTest{"vault": vaultStore, "awssm": awsStore} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			env, run, first := cutDuringTest(t, st)
			ctx := context.Background()
			const id = secret.ID("e2e/app")

			var status workflows.RotateStatus
			waitFor(t, 10*time.Minute, "the rollback to become outstanding", func() bool {
				v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus)
				return err == nil && v.Get(&status) == nil && status.Outcome == workflows.OutcomeRollbackOutstanding
			})
			if status.Outstanding == nil || status.NewVersion == nil {
				t.Fatalf("an outstanding rollback must say what and which version: %+v", status)
			}
			newRole := status.NewVersion.Metadata["role"]
			if err := login(ctx, env, "app_a", secret.NewSensitive(first)); err != nil {
				t.Fatalf("the old credential must still log in during the outage: %v", err)
			}

			st.proxy.Restore()
			if err := env.Client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.SignalRetryNow, nil); err != nil {
				t.Fatal(err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			res, ok := activities.DetailsOf[workflows.RotateResult](run.Get(waitCtx, nil))
			if !ok || res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || !res.Rollback.RestoredVerified || !res.Rollback.Discarded {
				t.Fatalf("once the store answers the rollback must finish: %+v", res)
			}
			if got, _ := st.consumer(ctx, id); got != first {
				t.Fatal("consumers must still read the old credential")
			}
			if err := login(ctx, env, "app_a", secret.NewSensitive(first)); err != nil {
				t.Fatalf("the old credential must still log in: %v", err)
			}
			var canLogin bool
			conn := superConn(t, env)
			defer conn.Close(ctx)
			if err := conn.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", newRole).Scan(&canLogin); err != nil {
				t.Fatal(err)
			}
			if canLogin {
				t.Fatalf("the new twin %s must be NOLOGIN again after the rollback", newRole)
			}
		})
	}
}

// cutDuringTest rotates e2e/app once, starts a second rotation and cuts the store off
// while its Test step runs (the check query sleeps), so the next step to need the store
// is Promote. It returns the env, the running rotation and the password consumers read
// before it.
func cutDuringTest(t *testing.T, st storeUnderTest) (*testenv.Env, client.WorkflowRun, string) {
	t.Helper()
	env := storeEnv(t, st, "SELECT pg_sleep(1.5)")
	ctx := context.Background()
	const id = secret.ID("e2e/app")
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, out)
	}
	first, _ := st.consumer(ctx, id)
	run, err := env.Client.ExecuteWorkflow(ctx, workflows.RotateStartOptions(id, "postgres"), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the test step", func() bool {
		v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus)
		var s workflows.RotateStatus
		return err == nil && v.Get(&s) == nil && s.Step == workflows.StepTest
	})
	time.Sleep(300 * time.Millisecond) // Test has read its material; pg_sleep runs
	st.proxy.Cut()
	return env, run, first
}
