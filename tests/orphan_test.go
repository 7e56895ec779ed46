package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/workflows"
)

// TestWorkerKilledAfterIAMMadeTheKey kills the worker process with SIGKILL at the worst
// instant of an IAM rotation: IAM has created the new access key, and the worker has not
// even received the answer, so neither the store nor a heartbeat knows the key. (A proxy
// in front of moto forwards CreateAccessKey and holds the answer back.) A new worker
// retries Create; it must find that key on IAM, delete it, and finish the rotation, after
// which the user holds exactly the current version's key. Before, the retry found two
// keys (the adopted one and the orphan), refused to delete an active key it did not know,
// and every later rotation of the user rolled back.
func TestWorkerKilledAfterIAMMadeTheKey(t *testing.T) {
	m := mototest.Start(t)
	const (
		id   = secret.ID("e2e/aws")
		user = "e2e-orphan"
	)
	legacy := m.CreateIAMUser(t, user)
	proxy := newHoldingProxy(t, m.Endpoint, func(r *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		return form.Get("Action") == "CreateAccessKey"
	})
	// The worker process reads its AWS configuration from the environment.
	t.Setenv("AWS_ENDPOINT_URL", proxy.srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", mototest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", mototest.SecretAccessKey)
	t.Setenv("AWS_REGION", mototest.Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	env := testenv.New(t, testenv.Options{
		NoWorker: true,
		Extra: `  - id: e2e/aws
    kind: awsiam
    grace: 0s
    awsiam:
      user: e2e-orphan
      delete_after: 0s
      consistency_timeout: 10s
`,
		Seed: func(ctx context.Context, store *file.Store) error {
			_, err := store.Put(ctx, id, secret.Material{
				"access_key_id": secret.NewSensitive(legacy.AccessKeyID), "secret_access_key": secret.NewSensitive(legacy.SecretAccessKey),
			}, map[string]string{"access_key_id": legacy.AccessKeyID, "user": user})
			return err
		},
	})
	ctx := context.Background()
	iamc := iam.NewFromConfig(m.AWSConfig(ctx))
	keys := func() []string {
		out, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
		if err != nil {
			t.Fatalf("list the user's keys: %v", err)
		}
		var ids []string
		for _, k := range out.AccessKeyMetadata {
			ids = append(ids, aws.ToString(k.AccessKeyId))
		}
		return ids
	}

	run := rotateAndKillWhenHeld(t, env, id, "awsiam", proxy, "the worker never asked IAM for a key")
	afterKill := keys()
	if len(afterKill) != 2 {
		t.Fatalf("after the kill the user has keys %v, want the adopted one and the one the killed worker never heard of", afterKill)
	}

	workerProcess(t, env)
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.RotateResult
	if err := run.Get(waitCtx, &res); err != nil {
		t.Fatalf("rotation did not complete after the worker restart: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated {
		t.Fatalf("outcome %s (%s), want rotated", res.Outcome, res.Error)
	}
	v, _ := current(t, env, id)
	after := keys()
	t.Logf("SIGKILL after CreateAccessKey: %d keys on the user after the kill, %d after the retried rotation %v (current %s)",
		len(afterKill), len(after), after, v.Metadata["access_key_id"])
	if len(after) != 1 || after[0] != v.Metadata["access_key_id"] {
		t.Fatalf("the user holds keys %v after the rotation, want only the current version's %s (the previous one is purged with delete_after 0s)",
			after, v.Metadata["access_key_id"])
	}
	if attempts := maxAttempt(history(t, env, run.GetID(), run.GetRunID())); attempts < 2 {
		t.Fatalf("expected a retried Create after the kill, max attempt was %d", attempts)
	}
}

// holdingProxy forwards every request to a target; the first request hold matches is
// forwarded too, but its answer is held back until release, so the caller can be killed
// after the target acted and before it heard.
type holdingProxy struct {
	srv      *httptest.Server
	target   string
	hold     func(r *http.Request, body []byte) bool
	holding  atomic.Bool
	held     chan struct{}
	released chan struct{}
	once     sync.Once
}

func newHoldingProxy(t *testing.T, target string, hold func(r *http.Request, body []byte) bool) *holdingProxy {
	t.Helper()
	p := &holdingProxy{target: target, hold: hold, held: make(chan struct{}), released: make(chan struct{})}
	p.holding.Store(true)
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	t.Cleanup(p.release)
	return p
}

func (p *holdingProxy) release() { p.once.Do(func() { close(p.released) }) }

func (p *holdingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(context.Background(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "build request", http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, "forward", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "read answer", http.StatusBadGateway)
		return
	}
	if p.hold(r, body) && p.holding.CompareAndSwap(true, false) {
		// The target has acted. The caller does not hear of it until it is gone.
		close(p.held)
		select {
		case <-p.released:
		case <-r.Context().Done():
		}
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// TestWorkerKilledAfterTheAPIMadeTheKey is the same kill for an HTTP API: the API has
// made the key, the worker never heard. The retried create sends the same
// Idempotency-Key and gets that key back, so the API made one key, and holds only the
// current version's.
func TestWorkerKilledAfterTheAPIMadeTheKey(t *testing.T) {
	const id = secret.ID("e2e/api")
	api := apitest.Start(t)
	proxy := newHoldingProxy(t, api.URL(), func(r *http.Request, _ []byte) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/v1/keys"
	})
	env := testenv.New(t, testenv.Options{
		NoWorker: true,
		Extra:    httpAPIEntry(proxy.srv.URL),
		Seed: func(ctx context.Context, store *file.Store) error {
			_, err := store.Put(ctx, "e2e/api-admin", secret.Material{"token": secret.NewSensitive(api.AdminToken())}, nil)
			return err
		},
	})
	ctx := context.Background()
	run := rotateAndKillWhenHeld(t, env, id, "httpapi", proxy, "the worker never asked the API for a key")
	afterKill := api.Count()

	workerProcess(t, env)
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.RotateResult
	if err := run.Get(waitCtx, &res); err != nil {
		t.Fatalf("rotation did not complete after the worker restart: %v", err)
	}
	if res.Outcome != workflows.OutcomeRotated {
		t.Fatalf("outcome %s (%s), want rotated", res.Outcome, res.Error)
	}
	v, _ := current(t, env, id)
	t.Logf("SIGKILL after the API's create: %d live key(s) after the kill, %d after the retried rotation, %d created in all",
		afterKill, api.Count(), api.Created())
	if api.Count() != 1 || !api.Live(v.Metadata["key_id"]) || api.Created() != 1 {
		t.Fatalf("the API holds %d live keys (current live: %v) and made %d; want one, the current version's",
			api.Count(), api.Live(v.Metadata["key_id"]), api.Created())
	}
}

// rotateAndKillWhenHeld starts a worker process and a rotation of id, waits until the
// proxy holds back the target's answer to the create call (the credential exists, the
// worker has not heard of it), SIGKILLs the worker there, then lets the answer go. It
// returns the rotation, which a new worker must finish.
func rotateAndKillWhenHeld(t *testing.T, env *testenv.Env, id secret.ID, kind string, proxy *holdingProxy, never string) client.WorkflowRun {
	t.Helper()
	first := workerProcess(t, env)
	run, err := env.Client.ExecuteWorkflow(context.Background(), workflows.RotateStartOptions(id, kind), workflows.RotateWorkflowName, workflows.RotateInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.held:
	case <-time.After(time.Minute):
		t.Fatal(never)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	proxy.release()
	return run
}
