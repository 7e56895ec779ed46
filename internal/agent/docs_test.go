package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

// yamlBlock finds the ```yaml blocks of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedConfigsParse keeps the examples in docs/agent.md and the README valid:
// every YAML block that configures an agent must load, and the database examples must
// render what their comments say. The users and groups they name
// (orders, nginx) do not exist on a test machine, so they are replaced by root's.
func TestDocumentedConfigsParse(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("not-a-real-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := strings.NewReplacer("owner: orders", `owner: "0"`, "group: orders", `group: "0"`, "group: nginx", `group: "0"`, "/run/secrets/vault-token", tokenFile)
	n, envFiles := 0, 0
	for _, doc := range []string{"../../docs/agent.md", "../../README.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllStringSubmatch(string(data), -1) {
			body := m[1]
			if !strings.Contains(body, "templates:") {
				continue // another command's example
			}
			n++
			cfg, err := Parse(filepath.Join(dir, "example.yaml"), []byte(ids.Replace(body)))
			if err != nil {
				t.Errorf("an example in %s does not load:\n%s\n%v", doc, body, err)
				continue
			}
			envFiles += checkPostgresExamples(t, doc, cfg)
		}
	}
	if n < 3 {
		t.Fatalf("found %d agent examples in the docs, want at least 3", n)
	}
	if envFiles < 2 {
		t.Fatalf("found %d db.env examples (docs/agent.md and the README), want 2", envFiles)
	}
}

// postgresVersion is what a Postgres secret's version holds, with the metadata the
// rotator writes (rotators/postgres: role, username, strategy, engine, host, port,
// dbname) and its one field.
func postgresVersion(password string) consumer.Value {
	return consumer.Value{
		Version: secret.Version{SecretID: "prod/orders-db/app", Token: "rotate/prod/orders-db/app/run-3", Number: 3, Metadata: map[string]string{
			"role": "orders_app", "username": "orders_app_b", "strategy": "alternating",
			"engine": "postgres", "host": "db.internal", "port": "5432", "dbname": "orders",
		}},
		Material: secret.Material{"password": secret.NewSensitive(password)},
	}
}

// checkPostgresExamples renders an example's templates of the orders database secret
// from a real Postgres-shaped version and checks they do what the docs say: db.env,
// exported by a real shell as the docs tell, sets libpq's variables (PGUSER, PGDATABASE,
// not PGUSERNAME, PGDBNAME); the dsn names the login user. It returns how many db.env
// files it checked.
func checkPostgresExamples(t *testing.T, doc string, cfg *Config) int {
	t.Helper()
	const pw = "Zx9_example-password-43chars-long-aaaaaaaa"
	checked := 0
	for _, tp := range cfg.Templates {
		if tp.Secret != "prod/orders-db/app" {
			continue
		}
		out, err := tp.render(postgresVersion(pw))
		if err != nil {
			t.Errorf("%s: the example for %s does not render from a Postgres version: %v", doc, tp.Destination, err)
			continue
		}
		switch filepath.Base(tp.Destination) {
		case "dsn":
			if !strings.Contains(string(out), "user=orders_app_b password="+pw) {
				t.Errorf("%s: the dsn example renders %q, want the login user and its password", doc, out)
			}
		case "db.env":
			checked++
			file := filepath.Join(t.TempDir(), "db.env")
			if err := os.WriteFile(file, out, 0o600); err != nil {
				t.Fatal(err)
			}
			// What the docs tell a shell script to do, in a clean environment.
			cmd := exec.Command("sh", "-c", `set -a; . "$1"; set +a; exec env`, "sh", file)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: sourcing the rendered db.env: %v", doc, err)
			}
			env := map[string]string{}
			for _, l := range strings.Split(string(got), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "PG") {
					env[k] = v
				}
			}
			want := map[string]string{"PGHOST": "db.internal", "PGPORT": "5432", "PGDATABASE": "orders", "PGUSER": "orders_app_b", "PGPASSWORD": pw}
			if len(env) != len(want) {
				t.Errorf("%s: sourcing db.env sets %d PG variables, want exactly libpq's %d", doc, len(env), len(want))
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s: sourcing db.env sets %s=%q, want %q", doc, k, env[k], v)
				}
			}
		}
	}
	return checked
}
