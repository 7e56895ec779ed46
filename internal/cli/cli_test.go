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
		"put without value":         {[]string{"put", "admin/x", "--store-dir", filepath.Join(dir, "store")}, []string{"no value on stdin"}},
		"worker without inventory":  {[]string{"worker"}, []string{"no inventory"}},
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
