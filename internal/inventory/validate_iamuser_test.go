package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTwoSecretsOnOneIAMUserAreRefused(t *testing.T) {
	const text = `version: 1
secrets:
  - id: a/iam
    kind: awsiam
    awsiam:
      user: payments-app
  - id: b/iam
    kind: awsiam
    awsiam:
      user: payments-app
  - id: c/iam
    kind: awsiam
    awsiam:
      user: billing-app
`
	path := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("two secrets on one IAM user must be refused")
	}
	msg := err.Error()
	if !strings.Contains(msg, "inv.yaml:10") || !strings.Contains(msg, "secrets[1].awsiam.user") || !strings.Contains(msg, "secrets[0] (") || !strings.Contains(msg, ":6)") {
		t.Fatalf("the problem must name both places:\n%s", msg)
	}
	if strings.Contains(msg, "billing-app") || strings.Count(msg, "awsiam.user") != 1 {
		t.Fatalf("only the clash may be reported:\n%s", msg)
	}
}
