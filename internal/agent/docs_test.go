package agent

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// yamlBlock finds the ```yaml blocks of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedConfigsParse keeps the examples in docs/agent.md and the README valid:
// every YAML block that configures an agent must load. The users and groups they name
// (orders, nginx) do not exist on a test machine, so they are replaced by root's.
func TestDocumentedConfigsParse(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("not-a-real-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := strings.NewReplacer("owner: orders", `owner: "0"`, "group: orders", `group: "0"`, "group: nginx", `group: "0"`, "/run/secrets/vault-token", tokenFile)
	n := 0
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
			if _, err := Parse(filepath.Join(dir, "example.yaml"), []byte(ids.Replace(body))); err != nil {
				t.Errorf("an example in %s does not load:\n%s\n%v", doc, body, err)
			}
		}
	}
	if n < 3 {
		t.Fatalf("found %d agent examples in the docs, want at least 3", n)
	}
}
