package tests

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/harness/mariadbtest"
	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/awssm"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
	"github.com/keyturn/keyturn/telemetry/awsspans"
	"github.com/keyturn/keyturn/telemetry/pgxspans"
	"github.com/keyturn/keyturn/telemetry/redisspans"
)

// canaryTargets are the servers besides PostgreSQL that the canary's rotations reach, so
// that the worker makes a span of every kind: Vault (e2e/app's admin password), an HTTP
// API (the API key e2e/api), two Redis nodes (the ACL user of e2e/redis), a MariaDB
// server (the twins of e2e/mariadb), Secrets Manager
// (e2e/broken's versions) and a webhook (told that e2e/broken rolled back, and that
// e2e/app's revoke was held and released).
type canaryTargets struct {
	vault   *vaulttest.Server
	seedKV  *api.KVv2
	moto    *mototest.Server
	api     *apitest.Server
	redis   []*redistest.Server
	mariadb *mariadbtest.Server
	webhook *receiver
	// hookURL is the webhook's URL; its path is a secret, as a Slack webhook's is.
	hookURL string
	tp      trace.TracerProvider

	backends  binding.Backends
	inventory string
}

// webhookPath is the secret part of the webhook's URL.
const webhookPath = "/services/T0CANARY/B0CANARY/Hook-Canary-4a9c1e"

func startCanaryTargets(t *testing.T, tp trace.TracerProvider) *canaryTargets {
	t.Helper()
	c := &canaryTargets{vault: vaulttest.Start(t, vaulttest.Options{}), moto: mototest.Start(t), api: apitest.Start(t), tp: tp,
		webhook: &receiver{key: []byte("Canary-Webhook-Signing-Key-5b7d")}}
	c.seedKV = c.vault.Client(t).KVv2("secret")
	c.redis = redisNodes(t)
	c.mariadb = mariadbServer(t)
	hook := httptest.NewServer(c.webhook)
	t.Cleanup(hook.Close)
	c.hookURL = hook.URL + webhookPath
	t.Setenv("KEYTURN_TEST_NOTIFY_URL", c.hookURL)
	t.Setenv("KEYTURN_TEST_NOTIFY_KEY", string(c.webhook.key))
	c.backends = binding.Backends{
		// Opened by the worker: every store call is traced on tp, as in `keyturn worker`.
		Vault: func(ctx context.Context, mount string) (binding.FieldStore, error) {
			s, err := vaultkv.New(ctx, vaultkv.Config{Address: c.vault.Addr, Mount: mount, Auth: vaultkv.Auth{Token: secret.NewSensitive(c.vault.Token)}, TracerProvider: tp})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			return s, err
		},
		AWSSM: func(ctx context.Context) (binding.FieldStore, error) {
			return awssm.NewFromConfig(c.moto.AWSConfig(ctx), awssm.Config{TracerProvider: tp})
		},
	}
	c.inventory = httpAPIEntry(c.api.URL()) + redisEntry(c.redis, "") + mariadbEntry(c.mariadb, "") +
		"notifications:\n  routes:\n    - name: security\n      url: env:KEYTURN_TEST_NOTIFY_URL\n      format: json\n" +
		"      signing_key: env:KEYTURN_TEST_NOTIFY_KEY\n      events: [rotation_rolled_back, revoke_held, revoke_released]\n"
	return c
}

// seedAdmin copies the admin password into Vault, where e2e/app's reference points.
func (c *canaryTargets) seedAdmin(ctx context.Context, password secret.Sensitive) error {
	_, err := c.seedKV.Put(ctx, "admin/e2e", map[string]any{"password": password.Reveal()})
	return err
}

// seed puts the API's admin token and the Redis admin's password where e2e/api's and
// e2e/redis's references point.
func (c *canaryTargets) seed(ctx context.Context, store *file.Store) error {
	if _, err := store.Put(ctx, "e2e/api-admin", secret.Material{"token": secret.NewSensitive(c.api.AdminToken())}, nil); err != nil {
		return err
	}
	if err := seedRedisAdmin(ctx, store); err != nil {
		return err
	}
	return seedMariaDBAdmin(ctx, store)
}

// secrets are what the targets hold that must appear nowhere: the API key Keyturn made
// and the API's admin token, both MariaDB passwords of e2e/mariadb, the current one's
// mysql_native_password hash (only the server's logs may hold it) and the MariaDB admin's
// password, both Redis passwords of e2e/redis (current and revoked),
// the current one's full SHA-256 (only its 16-digit prefix is a handle) and the Redis
// admin's password, the webhook's URL and signing key, the Vault token and the AWS
// secret key.
func (c *canaryTargets) secrets(t *testing.T, env *testenv.Env) map[string]string {
	t.Helper()
	_, key := current(t, env, "e2e/api")
	_, redisNow := current(t, env, "e2e/redis")
	_, redisBefore, err := env.Store.Read(context.Background(), "e2e/redis", secret.StagePrevious)
	if err != nil {
		t.Fatalf("e2e/redis has no previous version: %v", err)
	}
	sum := sha256.Sum256([]byte(redisNow.Get("password").Reveal()))
	_, dbNow := current(t, env, "e2e/mariadb")
	_, dbBefore, err := env.Store.Read(context.Background(), "e2e/mariadb", secret.StagePrevious)
	if err != nil {
		t.Fatalf("e2e/mariadb has no previous version: %v", err)
	}
	first := sha1.Sum([]byte(dbNow.Get("password").Reveal()))
	second := sha1.Sum(first[:])
	return map[string]string{
		"MariaDB password":         dbNow.Get("password").Reveal(),
		"revoked MariaDB password": dbBefore.Get("password").Reveal(),
		"MariaDB password's hash":  strings.ToUpper(hex.EncodeToString(second[:])),
		"MariaDB admin password":   mariadbAdminPass,
		"Redis password":           redisNow.Get("password").Reveal(),
		"revoked Redis password":   redisBefore.Get("password").Reveal(),
		"Redis password's SHA256":  hex.EncodeToString(sum[:]),
		"Redis admin password":     redisAdminPass,
		"API key secret":           key.Get("key_secret").Reveal(),
		"API admin token":          c.api.AdminToken(),
		"webhook URL path":         webhookPath,
		"webhook signing key":      string(c.webhook.key),
		"Vault token":              c.vault.Token,
		"AWS secret key":           mototest.SecretAccessKey,
	}
}

// wantSpans fails unless the worker's spans hold each kind of call to a target or store,
// at least one of each made directly under an activity's span: SQL statements and
// connections, Vault requests, AWS calls, Redis commands, HTTP API requests and the webhook's request,
// which names the webhook's host and no URL.
func (c *canaryTargets) wantSpans(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	port := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Port()
	}
	kinds := map[string]func(s tracetest.SpanStub) bool{
		"SQL": func(s tracetest.SpanStub) bool { return s.InstrumentationScope.Name == pgxspans.ScopeName },
		"AWS": func(s tracetest.SpanStub) bool { return s.InstrumentationScope.Name == awsspans.ScopeName },
		"Redis": func(s tracetest.SpanStub) bool {
			return s.InstrumentationScope.Name == redisspans.ScopeName
		},
	}
	for name, raw := range map[string]string{"Vault": c.vault.Addr, "HTTP API": c.api.URL(), "webhook": c.hookURL} {
		p := port(raw)
		kinds[name] = func(s tracetest.SpanStub) bool {
			return s.InstrumentationScope.Name == otelhttp.ScopeName && spantest.Attrs(s)["server.port"] == p
		}
	}
	for kind, is := range kinds {
		count, underActivity := 0, 0
		for _, s := range spans {
			if !is(s) {
				continue
			}
			count++
			if parent, ok := byID[s.Parent.SpanID()]; ok && strings.HasPrefix(parent.Name, "RunActivity:") {
				underActivity++
			}
			if kind == "webhook" {
				if _, ok := spantest.Attrs(s)["url.full"]; ok {
					t.Error("the webhook's span records url.full, which is a credential")
				}
			}
		}
		if count == 0 || underActivity == 0 {
			t.Errorf("%s: %d span(s), %d of them directly under an activity's span; want some of each", kind, count, underActivity)
		}
		t.Logf("%s: %d span(s)", kind, count)
	}
}
