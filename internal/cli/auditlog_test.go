package cli

import (
	"strings"
	"testing"
)

// TestAuditPostgresNeverInHelp: the connection string may hold a password, so it is read
// from KEYTURN_AUDIT_POSTGRES after the flags and never shown as a flag's default.
func TestAuditPostgresNeverInHelp(t *testing.T) {
	t.Setenv("KEYTURN_AUDIT_POSTGRES", "postgres://u:Hunter2-help@127.0.0.1:1/db")
	for _, args := range [][]string{{"audit", "show", "--help"}, {"worker", "--help"}, {"--help"}} {
		code, out := run(t, "", args...)
		if code != 0 || !strings.Contains(out, "--audit-postgres") {
			t.Fatalf("keyturn %s exited %d:\n%s", strings.Join(args, " "), code, out)
		}
		if strings.Contains(out, "Hunter2-help") {
			t.Errorf("keyturn %s prints the audit sink's password", strings.Join(args, " "))
		}
	}
}
