package pgsink

import (
	"os"
	"strings"
	"testing"
)

// TestDocumentedSchemaIsCurrent: the operator's copy of the schema in
// docs/audit-postgres.md is exactly what SchemaSQL renders for the default names.
func TestDocumentedSchemaIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/audit-postgres.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "```sql\n" + SchemaSQL(DefaultSchema, DefaultWriterRole) + "```\n"
	if !strings.Contains(string(doc), want) {
		t.Fatal("docs/audit-postgres.md does not hold SchemaSQL(DefaultSchema, DefaultWriterRole); paste the current rendering into its Schema section")
	}
}

// TestLockKeysDiffer: the chain lock depends on the schema and the chain.
func TestLockKeysDiffer(t *testing.T) {
	keys := map[int64]string{}
	for _, s := range []string{"a", "b"} {
		for _, c := range []string{"secret/x", "secret/y", "incident/x"} {
			k := lockKey(s, c)
			if prev, dup := keys[k]; dup {
				t.Fatalf("%s/%s and %s share a lock key", s, c, prev)
			}
			keys[k] = s + "/" + c
		}
	}
	if lockKey("a", "secret/x") != lockKey("a", "secret/x") {
		t.Fatal("lock key is not stable")
	}
}
