package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in process; these cases need no servers.
func run(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Execute(context.Background(), args, strings.NewReader(stdin), &out, &out)
	return code, out.String()
}

func TestBadInputGetsClearErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nsecrets:\n  - id: Bad ID\n    kind: mysql\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"invalid inventory":         {[]string{"config", "validate", "-f", bad}, []string{"bad.yaml:3", "bad.yaml:4", "mysql"}},
		"missing inventory":         {[]string{"config", "validate", "-f", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		"no inventory flag":         {[]string{"config", "validate"}, []string{"pass -f FILE"}},
		"invalid secret id":         {[]string{"rotate", "Not/Valid"}, []string{"not path-like"}},
		"unknown id with inventory": {[]string{"rotate", "prod/x", "-f", bad}, []string{"bad.yaml"}},
		"bad grace":                 {[]string{"rotate", "prod/x", "--grace", "-5s"}, []string{"outside 0s..168h"}},
		"bad output":                {[]string{"status", "-o", "yaml"}, []string{"use table or json"}},
		"bad stage":                 {[]string{"get", "prod/x", "--stage", "old", "--store-dir", dir}, []string{"use current, previous or pending"}},
		"no store there":            {[]string{"get", "prod/x", "--store-dir", filepath.Join(dir, "store")}, []string{"no file store at", "--store-dir"}},
		"bad limit":                 {[]string{"status", "--limit", "-1"}, []string{"--limit -1"}},
		"rotate reason too long":    {[]string{"rotate", "prod/x", "--reason", strings.Repeat("é", 501)}, []string{"--reason is 501 characters long; keep it to 500"}},
		"incident reason too long": {[]string{"incident", "start", "--id", "i1", "--select", "prefix=prod/", "--mode", "contain", "--reason", strings.Repeat("x", 600), "--yes"},
			[]string{"--reason is 600 characters long"}},
		"put without value":         {[]string{"put", "admin/x", "--store-dir", filepath.Join(dir, "store")}, []string{"no value on stdin"}},
		"worker without inventory":  {[]string{"worker"}, []string{"no inventory"}},
		"overdue with an id":        {[]string{"status", "prod/x", "--overdue"}, []string{"leave out the secret ID"}},
		"overdue without inventory": {[]string{"status", "--overdue", "--home", dir}, []string{"none was found", "pass -f FILE"}},
		"sweep interval too short":  {[]string{"worker", "--sweep-interval", "1s"}, []string{"sweep interval 1s", "at least 10s"}},
		"sweep interval not one":    {[]string{"dev", "--sweep-interval", "often"}, []string{"sweep interval often"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KEYTURN_INVENTORY", "")
			code, out := run(t, "", tc.args...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; output:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestPutThenGet(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	code, out := run(t, "s3cret-value\n", "put", "admin/x", "--store-dir", store)
	if code != 0 || !strings.Contains(out, "stored admin/x version 1") || strings.Contains(out, "s3cret-value") {
		t.Fatalf("put: %d\n%s", code, out)
	}
	code, out = run(t, "", "get", "admin/x", "--store-dir", store)
	if code != 0 || strings.Contains(out, "s3cret-value") || !strings.Contains(out, "version: 1") {
		t.Fatalf("get must not reveal: %d\n%s", code, out)
	}
	code, out = run(t, "", "get", "admin/y", "--store-dir", store)
	if code != 1 || !strings.Contains(out, "has no current version") {
		t.Fatalf("get of a secret not in the store: %d\n%s", code, out)
	}
	code, out = run(t, "", "get", "admin/x", "--store-dir", store, "--reveal")
	if code != 0 || !strings.Contains(out, "password: s3cret-value") {
		t.Fatalf("get --reveal: %d\n%s", code, out)
	}
}

// config validate shows each secret's owner and the maximum age in force, derived ones
// with how they were found.
func TestConfigValidateShowsAgePolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	text := `version: 1
defaults: {owner: platform}
secrets:
  - id: a/weekly
    kind: postgres
    schedule: "0 3 * * 1"
    window: 30m
    postgres: {host: localhost, sslmode: disable, database: d, role: a, admin: {username: k, password: "env:PW"}}
  - id: a/none
    kind: postgres
    owner: payments
    postgres: {host: localhost, sslmode: disable, database: d, role: b, admin: {username: k, password: "env:PW"}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run(t, "", "config", "validate", "-f", path)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"2 secret(s), no problems", "OWNER", "MAX AGE",
		"a/weekly  postgres  platform  14d30m   schedule: 2 × 7d between runs + 30m window",
		"a/none    postgres  payments  none     no max_age, schedule or certificate lifetime: never overdue by age"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// config validate prints a grace shorter than the slowest consumer's refresh as a warning
// with its line, and still accepts the inventory.
func TestConfigValidateWarnsOfSlowConsumers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	text := `version: 1
secrets:
  - id: a/short-grace
    kind: postgres
    grace: 5m
    sensitivity: high
    consumers:
      - name: reports
        refresh: 1h
    postgres: {host: localhost, sslmode: disable, database: d, role: a, admin: {username: k, password: "env:PW"}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run(t, "", "config", "validate", "-f", path)
	if code != 0 {
		t.Fatalf("a warning must not refuse the inventory; exit %d:\n%s", code, out)
	}
	for _, want := range []string{"1 secret(s), no problems, 1 warning(s)",
		path + ":9: warning: secrets[0].consumers[0].refresh: secret a/short-grace: grace 5m is shorter than consumer reports's refresh 1h plus a margin of 15m",
		"raise grace to at least 1h15m or make reports refresh at least every 4m"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestLongReasonIsNotRepeated: a refused reason is counted, never printed back.
func TestLongReasonIsNotRepeated(t *testing.T) {
	t.Setenv("KEYTURN_INVENTORY", "")
	reason := strings.Repeat("leaked-in-paste ", 40)
	for _, args := range [][]string{
		{"rotate", "prod/x", "--reason", reason},
		{"incident", "start", "--id", "i1", "--select", "prefix=prod/", "--mode", "contain", "--reason", reason, "--yes"},
	} {
		if code, out := run(t, "", args...); code != 1 || !strings.Contains(out, "--reason is 640 characters long") || strings.Contains(out, "leaked-in-paste") {
			t.Fatalf("%s: exit %d, and the reason must not be repeated:\n%s", args[0], code, out)
		}
	}
}
