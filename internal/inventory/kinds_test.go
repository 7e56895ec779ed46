package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadKinds(t *testing.T) {
	inv, err := Load("testdata/kinds.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	iam := inv.Secrets[0].AWSIAM
	if iam == nil || iam.User != "payments-app" || !iam.DeleteInactive || iam.DeleteAfter != DefaultIAMDeleteAfter || iam.ConsistencyTimeout != DefaultIAMConsistencyTimeout {
		t.Errorf("awsiam block %+v", iam)
	}
	h := inv.Secrets[1].HTTPAPI
	if h == nil || h.Create.Method != "POST" || h.Create.Headers["Authorization"] != "Bearer {{.Admin}}" || len(h.Create.Success) != 1 || h.Create.Success[0] != 201 ||
		h.Revoke.Gone[0] != 404 || h.KeyID != "data.id" || h.Timeout != DefaultHTTPTimeout || h.Admin != "env:BILLING_ADMIN" {
		t.Errorf("httpapi block %+v", h)
	}
	p := inv.Secrets[2].VaultPKI
	if p == nil || p.Mount != DefaultPKIMount || p.Role != "web" || p.TTL != 720*time.Hour || p.KeyType != "rsa" || p.KeyBits != DefaultRSABits || p.RenewAt != DefaultRenewAt || p.IPSANs[0] != "127.0.0.1" {
		t.Errorf("vaultpki block %+v", p)
	}
	l := inv.Secrets[3].LocalCA
	if l == nil || l.CAKey != "file:localca/ca#private_key" || l.RenewAt != 0.5 || l.KeyType != "ec" || l.TTL != DefaultCertTTL {
		t.Errorf("localca block %+v", l)
	}
}

func TestKindProblems(t *testing.T) {
	const text = `version: 1
secrets:
  - id: a/iam
    kind: awsiam
  - id: b/api
    kind: httpapi
    httpapi:
      admin: hunter2
      create: {method: POST, url: "https://x.example/keys?token={{.Admin}}"}
      test: {method: FETCH, url: "http://api.example.com/whoami"}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}", gone: [4040]}
  - id: c/cert
    kind: vaultpki
    postgres: {host: h}
    vaultpki: {common_name: "", key_type: dsa, renew_at: 1.5, ip_sans: [not-an-ip]}
`
	wantKindProblems(t, text, map[string]string{
		"secrets[0].awsiam":               "required for kind \"awsiam\"",
		"secrets[1].httpapi.admin":        "",
		"secrets[1].httpapi.create.url":   "must not contain {{.Admin}}",
		"secrets[1].httpapi.test.method":  "unknown method \"FETCH\"",
		"secrets[1].httpapi.test.url":     "plain http",
		"secrets[1].httpapi.revoke":       "4040 is not an HTTP status",
		"secrets[1].httpapi.key_id":       "required",
		"secrets[2].postgres":             "only allowed when kind is \"postgres\"",
		"secrets[2].vaultpki.role":        "required",
		"secrets[2].vaultpki.common_name": "required",
		"secrets[2].vaultpki.key_type":    "unknown key type",
		"secrets[2].vaultpki.renew_at":    "between 0 and 1",
		"secrets[2].vaultpki.ip_sans[0]":  "not an IP address",
	}, "hunter2")
}

// wantKindProblems loads text as an inventory and fails t unless, for each field of want,
// some problem on that field (with a line) contains the text given, and unless no
// problem echoes one of hidden.
func wantKindProblems(t *testing.T, text string, want map[string]string, hidden ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	probs, ok := err.(Errors)
	if !ok {
		t.Fatalf("Load: %v, want problems", err)
	}
	for field, text := range want {
		found := false
		for _, p := range probs {
			if p.Field == field && strings.Contains(p.Message, text) && p.Line > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem on %s containing %q", field, text)
		}
	}
	for _, h := range hidden {
		if strings.Contains(err.Error(), h) {
			t.Errorf("the problems echo %q", h)
		}
	}
	if t.Failed() {
		t.Logf("problems:\n%v", err)
	}
}
