package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/secret"
)

// awsDatabaseSecret is AWS's documented JSON structure for database credentials ("JSON
// structure of AWS Secrets Manager secrets", Amazon RDS PostgreSQL), the fields RDS Proxy,
// AWS's JDBC wrapper and the Secrets Manager caching clients read. Port is a number.
type awsDatabaseSecret struct {
	Engine   string      `json:"engine"`
	Host     string      `json:"host"`
	Port     json.Number `json:"port"`
	DBName   string      `json:"dbname"`
	Username string      `json:"username"`
	Password string      `json:"password"`
}

// parseDatabaseSecret decodes what a platform tool returned, requiring port to be a JSON
// number as AWS's structure has it. Errors never quote the value, which holds a password.
func parseDatabaseSecret(raw []byte) (awsDatabaseSecret, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return awsDatabaseSecret{}, fmt.Errorf("the secret is not a JSON object (%d bytes)", len(raw))
	}
	if p := fields["port"]; len(p) == 0 || p[0] < '0' || p[0] > '9' {
		return awsDatabaseSecret{}, fmt.Errorf("port is not a JSON number")
	}
	var s awsDatabaseSecret
	if err := json.Unmarshal(raw, &s); err != nil {
		return awsDatabaseSecret{}, fmt.Errorf("the secret does not have AWS's database structure: a field has the wrong JSON type")
	}
	return s, nil
}

// loginWith logs in to Postgres with nothing but the secret's fields, as an application
// configured from the secret does, and returns the session user.
func loginWith(ctx context.Context, s awsDatabaseSecret) (string, error) {
	if s.Engine != "postgres" {
		return "", fmt.Errorf("engine %q, want postgres", s.Engine)
	}
	port, err := s.Port.Int64()
	if err != nil || port < 1 || port > 65535 {
		return "", fmt.Errorf("port %s is not a TCP port", s.Port)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable connect_timeout=5")
	if err != nil {
		return "", err
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = s.Host, uint16(port), s.DBName, s.Username, s.Password
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var user string
	err = conn.QueryRow(ctx, "SELECT session_user").Scan(&user)
	return user, err
}

// needAWSCLI returns the aws command line's path; a missing one skips, or fails under CI.
func needAWSCLI(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		if testdeps.InCI() {
			t.Fatalf("the aws command line is not on PATH (%v): CI must have it", err)
		}
		t.Skipf("skipping: the aws command line is not on PATH (%v); set CI=true to make this a failure", err)
	}
	return bin
}

// awsCLIRead reads AWSCURRENT with the real aws command line against moto, the way an
// operator or a shell script consumer does.
func awsCLIRead(endpoint string) func(t *testing.T, id secret.ID) []byte {
	return func(t *testing.T, id secret.ID) []byte {
		t.Helper()
		bin := needAWSCLI(t)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		// moto's quirk (see ENVIRONMENT.md): name the stage, or it may answer the old value.
		cmd := exec.CommandContext(ctx, bin, "secretsmanager", "get-secret-value",
			"--secret-id", string(id), "--version-stage", "AWSCURRENT",
			"--endpoint-url", endpoint, "--region", mototest.Region,
			"--query", "SecretString", "--output", "text")
		cmd.Env = awsCLIEnv(t)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			// stderr is the CLI's error message; the value is only ever on stdout.
			t.Fatalf("aws secretsmanager get-secret-value: %v\n%s", err, stderr.String())
		}
		return bytes.TrimSpace(stdout.Bytes())
	}
}

// awsCLIEnv is the test's environment without its AWS settings, plus moto's credentials
// and config files that do not exist, so nothing of the machine's AWS setup leaks in.
func awsCLIEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	none := filepath.Join(t.TempDir(), "none")
	return append(env,
		"AWS_ACCESS_KEY_ID="+mototest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+mototest.SecretAccessKey,
		"AWS_DEFAULT_REGION="+mototest.Region,
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
}

// vaultHTTPRead reads the consumer path with Vault's HTTP API, as a consumer with no Vault
// library does, and returns the KV data object as Vault sent it.
func vaultHTTPRead(addr, token string) func(t *testing.T, id secret.ID) []byte {
	return func(t *testing.T, id secret.ID) []byte {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, addr+"/v1/secret/data/"+string(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Vault-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET the consumer path: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET the consumer path: HTTP %d", resp.StatusCode)
		}
		var body struct {
			Data struct {
				Data json.RawMessage `json:"data"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("Vault's answer is not JSON: %v", err)
		}
		return body.Data.Data
	}
}

// TestDatabaseSecretWorksWithPlatformTools rotates a real Postgres role (scram cluster)
// twice with its versions in AWS Secrets Manager (moto) and in Vault KV v2, reads the
// current value after each rotation with the platform's own tool (the aws command line;
// Vault's HTTP API), and logs in with nothing but the fields of AWS's database structure
// it finds there: engine, host, port (a JSON number), dbname, username, password. The user
// name is the twin of that version; once the second rotation has revoked the first twin,
// the first value no longer logs in. No password appears in keyturn's output or the
// worker's logs, and the test prints none.
func TestDatabaseSecretWorksWithPlatformTools(t *testing.T) {
	for name, open := range map[string]func(*testing.T) storeUnderTest{"vault": vaultStore, "awssm": awsStore} {
		t.Run(name, func(t *testing.T) {
			if name == "awssm" {
				needAWSCLI(t) // before starting anything
			}
			st := open(t)
			env := storeEnv(t, st, "")
			ctx := context.Background()
			const id = secret.ID("e2e/app")

			var (
				outputs []string
				values  []awsDatabaseSecret
			)
			for i, twin := range []string{"app_a", "app_b"} {
				code, out := keyturn(t, env, "rotate", string(id), "--wait")
				outputs = append(outputs, out)
				if code != 0 {
					t.Fatalf("rotation %d exited %d:\n%s", i+1, code, out)
				}
				s, err := parseDatabaseSecret(st.platform(t, id))
				if err != nil {
					t.Fatalf("after rotation %d: %v", i+1, err)
				}
				if s.Username != twin || s.Host != env.Cluster.Host || s.Port.String() != fmt.Sprint(env.Cluster.Port) || s.DBName != "demo" || s.Password == "" {
					t.Fatalf("after rotation %d the secret names user %q on %s:%s/%s (password set: %v); want %q on %s:%d/demo",
						i+1, s.Username, s.Host, s.Port, s.DBName, s.Password != "", twin, env.Cluster.Host, env.Cluster.Port)
				}
				user, err := loginWith(ctx, s)
				if err != nil {
					t.Fatalf("after rotation %d the secret's fields do not log in: %v", i+1, err)
				}
				if user != twin {
					t.Fatalf("logged in as %q, want the version's twin %q", user, twin)
				}
				values = append(values, s)
			}
			if values[0].Password == values[1].Password {
				t.Fatal("the two rotations gave the same password")
			}
			if _, err := loginWith(ctx, values[0]); err == nil {
				t.Fatal("the first value still logs in after the second rotation revoked its twin")
			}

			for i, v := range values {
				for where, text := range map[string]string{"keyturn's output": strings.Join(outputs, "\n"), "the worker's logs": env.Logs.String()} {
					if strings.Contains(text, v.Password) {
						t.Errorf("password %d appears in %s", i+1, where)
					}
				}
			}
		})
	}
}
