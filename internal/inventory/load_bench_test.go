package inventory

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// benchInventory writes an inventory of n postgres secrets shaped like the incident
// benchmarks' (one server, a group role and its twins each) and returns its path.
func benchInventory(b *testing.B, n int) string {
	b.Helper()
	var buf bytes.Buffer
	buf.WriteString("version: 1\nsecrets:\n")
	for i := range n {
		fmt.Fprintf(&buf, "  - id: bulk/app-%05d\n    kind: postgres\n    grace: 0s\n    tags: [demo]\n", i)
		fmt.Fprintf(&buf, "    postgres:\n      host: 127.0.0.1\n      port: 5432\n      database: demo\n      sslmode: disable\n")
		fmt.Fprintf(&buf, "      role: bulk_%05d\n      strategy: alternating\n", i)
		fmt.Fprintf(&buf, "      admin:\n        username: bulk_admin\n        password: \"file:admin/bulk\"\n")
	}
	path := filepath.Join(b.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad10k loads an inventory of 10,000 secrets, as `keyturn incident start`
// does before it may start anything. Its floor, BenchmarkLoad10kYAMLOnly, is the YAML
// library's own parse of the same file: Load's ratio to it is what Keyturn's decoding,
// defaults and validation add.
func BenchmarkLoad10k(b *testing.B) {
	path := benchInventory(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		inv, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(inv.Secrets) != 10000 {
			b.Fatalf("loaded %d secrets, want 10000", len(inv.Secrets))
		}
	}
}

// BenchmarkLoad10kYAMLOnly is BenchmarkLoad10k's floor: the file read and parsed into
// YAML nodes, nothing decoded or checked.
func BenchmarkLoad10kYAMLOnly(b *testing.B) {
	path := benchInventory(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			b.Fatal(err)
		}
	}
}
