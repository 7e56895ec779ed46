package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// canaryAuditOutputs gathers every way the audit trail leaves Keyturn, for the canary
// scan: the trail's files as stored, `keyturn audit show` in text and JSON, `keyturn audit
// verify`, and the incident's evidence bundle, unpacked. The records must name the
// rotation's versions and the incident, or the scan would prove nothing.
func canaryAuditOutputs(t *testing.T, env *testenv.Env, incidentID string, id secret.ID) []byte {
	t.Helper()
	if err := env.Audit.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, name := range []string{"records.jsonl", "checkpoints.jsonl"} {
		all.Write(readFile(t, filepath.Join(env.AuditDir, name)))
	}
	records := all.String()
	for _, want := range []string{`"secretId":"` + string(id) + `"`, `"step":"create"`, `"event":"incident.started"`, `"event":"rotation.finished"`, `"role":"app_b"`} {
		if !strings.Contains(records, want) {
			t.Fatalf("the audit trail lacks %s: the scan would prove nothing:\n%.3000s", want, records)
		}
	}
	for _, args := range [][]string{
		{"audit", "show"}, {"audit", "show", "--json"}, {"audit", "show", "--incident", incidentID}, {"audit", "verify"},
	} {
		code, out := keyturn(t, env, args...)
		if code != 0 || out == "" {
			t.Fatalf("keyturn %s exited %d:\n%s", strings.Join(args, " "), code, out)
		}
		all.WriteString(out)
	}
	bundle := filepath.Join(t.TempDir(), "evidence.tar.gz")
	if code, out := keyturn(t, env, "incident", "evidence", incidentID, "-o", bundle); code != 0 {
		t.Fatalf("incident evidence exited %d:\n%s", code, out)
	}
	files := untar(t, bundle, "incident-"+incidentID+"-evidence/")
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		all.Write(files[name])
	}
	all.Write(readFile(t, bundle)) // and the archive as it is handed over, compressed
	return all.Bytes()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
