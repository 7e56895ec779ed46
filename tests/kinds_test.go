package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/api"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// kindCase is one credential kind on its real target, with checks written independently
// of its rotator: they talk to the target the way a consumer (or an attacker holding the
// old credential) would.
type kindCase struct {
	id    secret.ID
	extra string
	seed  func(ctx context.Context, store *file.Store) error
	back  binding.Backends
	// works fails the test unless the material is accepted by the target.
	works func(t *testing.T, v secret.Version, m secret.Material)
	// refused fails the test unless the target refuses (or has revoked) the material.
	refused func(t *testing.T, v secret.Version, m secret.Material)
}

// TestRotateEachKind rotates each kind twice through the CLI and the Rotate workflow with
// the file store: after the second rotation the new credential works, the first is
// refused by its target, the store holds the history, and the second rotation's
// workflow history replays.
func TestRotateEachKind(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T) kindCase{
		"localca":  localCACase,
		"vaultpki": vaultPKICase,
		"awsiam":   awsIAMCase,
		"httpapi":  httpAPICase,
		"redis":    redisCase,
		"mariadb":  mariadbCase,
	} {
		t.Run(name, func(t *testing.T) {
			kc := mk(t)
			env := testenv.New(t, testenv.Options{Extra: kc.extra, Seed: kc.seed, Backends: kc.back})
			id := string(kc.id)
			code, out := keyturn(t, env, "rotate", id, "--wait")
			if code != 0 || !strings.Contains(out, "outcome:  rotated") {
				t.Fatalf("first rotate exited %d:\n%s", code, out)
			}
			v1, m1 := current(t, env, kc.id)
			kc.works(t, v1, m1)

			code, out = keyturn(t, env, "rotate", id, "--wait")
			if code != 0 || !strings.Contains(out, "outcome:  rotated") {
				t.Fatalf("second rotate exited %d:\n%s", code, out)
			}
			v2, m2 := current(t, env, kc.id)
			if v2.Number != v1.Number+1 {
				t.Fatalf("second rotation made version %d, want %d", v2.Number, v1.Number+1)
			}
			kc.works(t, v2, m2)
			kc.refused(t, v1, m1)
			prev, _, err := env.Store.Read(context.Background(), kc.id, secret.StagePrevious)
			if err != nil || prev.Token != v1.Token {
				t.Fatalf("previous should be version %d: %v %v", v1.Number, prev.Token, err)
			}
			code, out = keyturn(t, env, "get", id)
			for _, m := range []secret.Material{m1, m2} {
				for field, v := range m {
					if isSecretField(field) && strings.Contains(out, v.Reveal()) {
						t.Errorf("get without --reveal printed material field %s", field)
					}
				}
			}
			if code != 0 {
				t.Fatalf("get exited %d", code)
			}
			// The second rotation's history replays (recorded as a fixture with
			// KEYTURN_RECORD_HISTORIES=1): each kind's path, the IAM key's purge included.
			checkReplay(t, env, "rotate/"+id, "", "rotate_kind_"+name)
			// No secret field of either version is in the rotation's history, decrypted
			// as the Web UI shows it, nor in the logs.
			hist, err := protojson.Marshal(decodedHistory(t, env, "rotate/"+id, ""))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []secret.Material{m1, m2} {
				for field, v := range m {
					if !isSecretField(field) {
						continue
					}
					if strings.Contains(string(hist), v.Reveal()) {
						t.Errorf("the decoded history of rotate/%s contains material field %s", id, field)
					}
					if strings.Contains(env.Logs.String(), v.Reveal()) {
						t.Errorf("the logs contain material field %s", field)
					}
				}
			}
		})
	}
}

func isSecretField(field string) bool {
	switch field {
	case "private_key", "secret_access_key", "key_secret", "password":
		return true
	}
	return false
}

func localCACase(t *testing.T) kindCase {
	dir := t.TempDir()
	crl := dir + "/ca.crl"
	var caPEM []byte
	return kindCase{
		id: "e2e/cert",
		extra: demo.CertInventory([]demo.CertSecret{{
			ID: "e2e/cert", CommonName: "e2e.localhost", AltNames: []string{"localhost"}, TTL: "1h", Grace: "0s", CRLFile: crl,
		}}),
		seed: func(ctx context.Context, store *file.Store) error {
			if _, err := demo.EnsureCA(ctx, store); err != nil {
				return err
			}
			_, m, err := store.Read(ctx, demo.CAID, secret.StageCurrent)
			caPEM = []byte(m.Get("certificate").Reveal())
			return err
		},
		works: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			handshake(t, m, caPEM, "e2e.localhost")
		},
		refused: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			data, err := os.ReadFile(crl)
			if err != nil {
				t.Fatalf("read the CRL: %v", err)
			}
			if block, _ := pem.Decode(data); block != nil {
				data = block.Bytes
			}
			list, err := x509.ParseRevocationList(data)
			if err != nil {
				t.Fatalf("parse the CRL: %v", err)
			}
			ca := parseCert(t, caPEM)
			if err := list.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("the CRL is not signed by the CA: %v", err)
			}
			if !revokedIn(list, parseCert(t, []byte(m.Get("certificate").Reveal())).SerialNumber) {
				t.Fatal("the revoked certificate's serial is not in the published CRL")
			}
		},
	}
}

func vaultPKICase(t *testing.T) kindCase {
	srv := vaulttest.Start(t, vaulttest.Options{})
	c := srv.Client(t)
	ctx := context.Background()
	if err := c.Sys().MountWithContext(ctx, "pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		t.Fatalf("mount pki: %v", err)
	}
	root, err := c.Logical().WriteWithContext(ctx, "pki/root/generate/internal", map[string]any{"common_name": "Keyturn e2e root", "ttl": "8760h"})
	if err != nil {
		t.Fatalf("generate the root CA: %v", err)
	}
	caPEM := []byte(root.Data["certificate"].(string))
	if _, err := c.Logical().WriteWithContext(ctx, "pki/roles/web", map[string]any{
		"allowed_domains": "e2e.internal", "allow_bare_domains": true, "allow_subdomains": true,
		"allow_ip_sans": true, "key_type": "any", "max_ttl": "72h",
	}); err != nil {
		t.Fatalf("create the PKI role: %v", err)
	}
	return kindCase{
		id: "e2e/tls",
		extra: `  - id: e2e/tls
    kind: vaultpki
    grace: 0s
    vaultpki:
      role: web
      common_name: web.e2e.internal
      alt_names: [api.e2e.internal]
      ip_sans: [127.0.0.1]
      ttl: 2h
`,
		back: binding.Backends{Vault: func(ctx context.Context, mount string) (binding.FieldStore, error) {
			s, err := vaultkv.New(ctx, vaultkv.Config{Address: srv.Addr, Mount: mount, Auth: vaultkv.Auth{Token: secret.NewSensitive(srv.Token)}})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			return s, err
		}},
		works: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			handshake(t, m, caPEM, "web.e2e.internal")
		},
		refused: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			serial := parseCert(t, []byte(m.Get("certificate").Reveal())).SerialNumber
			der, err := c.Logical().ReadRawWithContext(ctx, "pki/crl")
			if err != nil {
				t.Fatalf("fetch Vault's CRL: %v", err)
			}
			defer der.Body.Close()
			raw, err := io.ReadAll(der.Body)
			if err != nil {
				t.Fatalf("read Vault's CRL: %v", err)
			}
			list, err := x509.ParseRevocationList(raw)
			if err != nil {
				t.Fatalf("parse Vault's CRL: %v", err)
			}
			if !revokedIn(list, serial) {
				t.Fatal("the revoked certificate's serial is not in Vault's CRL")
			}
		},
	}
}

func awsIAMCase(t *testing.T) kindCase {
	m := mototest.Start(t)
	ctx := context.Background()
	admin := m.AWSConfig(ctx)
	const user = "e2e-app"
	// The user starts with a key in use, which the operator adopts by recording it as the
	// secret's current version; the first rotation then revokes and deletes it.
	legacy := m.CreateIAMUser(t, user)
	iamc := iam.NewFromConfig(admin)
	return kindCase{
		id: "e2e/aws",
		extra: `  - id: e2e/aws
    kind: awsiam
    grace: 0s
    awsiam:
      user: e2e-app
      delete_after: 0s
      consistency_timeout: 10s
`,
		seed: func(ctx context.Context, store *file.Store) error {
			_, err := store.Put(ctx, "e2e/aws", secret.Material{
				"access_key_id": secret.NewSensitive(legacy.AccessKeyID), "secret_access_key": secret.NewSensitive(legacy.SecretAccessKey),
			}, map[string]string{"access_key_id": legacy.AccessKeyID, "user": user})
			return err
		},
		back: binding.Backends{AWS: func(context.Context) (aws.Config, error) { return admin, nil }},
		works: func(t *testing.T, _ secret.Version, mat secret.Material) {
			t.Helper()
			cfg := admin.Copy()
			cfg.Credentials = credentials.NewStaticCredentialsProvider(mat.Get("access_key_id").Reveal(), mat.Get("secret_access_key").Reveal(), "")
			out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil || !strings.HasSuffix(aws.ToString(out.Arn), ":user/"+user) {
				t.Fatalf("the current key is not accepted as %s: %v", user, err)
			}
		},
		refused: func(t *testing.T, _ secret.Version, mat secret.Material) {
			t.Helper()
			keys, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys.AccessKeyMetadata {
				if aws.ToString(k.AccessKeyId) == mat.Get("access_key_id").Reveal() {
					t.Fatalf("the revoked key still exists with status %s; with delete_after 0s it must be deleted", k.Status)
				}
			}
		},
	}
}

// httpAPIEntry is the inventory entry of e2e/api, an HTTP API key on the test API at base
// (apitest, or a proxy in front of it); its admin token is e2e/api-admin#token.
func httpAPIEntry(base string) string {
	return fmt.Sprintf(`  - id: e2e/api
    kind: httpapi
    grace: 0s
    httpapi:
      admin: "file:e2e/api-admin#token"
      create:
        method: POST
        url: %[1]s/v1/keys
        headers: {Authorization: "Bearer {{.Admin}}", Content-Type: application/json}
        body: '{"name": "{{.SecretID}}"}'
        success: [201]
      test:
        method: GET
        url: %[1]s/v1/whoami
        headers: {Authorization: "Bearer {{.Secret}}"}
      revoke:
        method: DELETE
        url: %[1]s/v1/keys/{{.KeyID}}
        headers: {Authorization: "Bearer {{.Admin}}"}
        success: [204]
        gone: [404]
      key_id: data.id
      key_secret: data.secret
`, base)
}

func httpAPICase(t *testing.T) kindCase {
	api := apitest.Start(t)
	return kindCase{
		id:    "e2e/api",
		extra: httpAPIEntry(api.URL()),
		seed: func(ctx context.Context, store *file.Store) error {
			_, err := store.Put(ctx, "e2e/api-admin", secret.Material{"token": secret.NewSensitive(api.AdminToken())}, nil)
			return err
		},
		works: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			if code := whoami(t, api.URL(), m.Get("key_secret")); code != http.StatusOK {
				t.Fatalf("the current key gets %d from the API, want 200", code)
			}
		},
		refused: func(t *testing.T, _ secret.Version, m secret.Material) {
			t.Helper()
			if code := whoami(t, api.URL(), m.Get("key_secret")); code != http.StatusUnauthorized {
				t.Fatalf("the revoked key gets %d from the API, want 401", code)
			}
		},
	}
}

func whoami(t *testing.T, base string, key secret.Sensitive) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// handshake serves the certificate and key on a loopback listener and connects with a
// client that trusts only caPEM and expects name.
func handshake(t *testing.T, m secret.Material, caPEM []byte, name string) {
	t.Helper()
	chain := m.Get("certificate").Reveal() + "\n" + m.Get("ca_chain").Reveal()
	pair, err := tls.X509KeyPair([]byte(chain), []byte(m.Get("private_key").Reveal()))
	if err != nil {
		t.Fatalf("certificate and key do not form a pair: %v", err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err == nil {
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate to trust")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
	if err != nil {
		t.Fatalf("TLS handshake with the current certificate as %s: %v", name, err)
	}
	conn.Close()
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func revokedIn(list *x509.RevocationList, serial *big.Int) bool {
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}
