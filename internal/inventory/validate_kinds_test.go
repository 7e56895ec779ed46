package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
)

// httpapiSecret writes one httpapi secret with extra fields in its block; the extra
// fields start at line 11.
func httpapiSecret(extra string) string {
	return `version: 1
secrets:
  - id: billing/api
    kind: httpapi
    httpapi:
      admin: env:BILLING_ADMIN
      create: {method: POST, url: "https://api.example.com/v1/keys", headers: {Authorization: "Bearer {{.Admin}}"}}
      test: {method: GET, url: "https://api.example.com/v1/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://api.example.com/v1/keys/{{.KeyID}}", headers: {Authorization: "Bearer {{.Admin}}"}}
      key_id: data.id
` + extra + `      key_secret: data.secret
`
}

func TestValidateHTTPAPICAFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("ca.pem", string(apitest.StartTLS(t).CAPEM()))
	tests := map[string]struct {
		file string
		want string // fragment of the one problem; "" for none
	}{
		"a CA bundle":          {good, ""},
		"missing file":         {filepath.Join(dir, "absent.pem"), "does not exist"},
		"not PEM":              {write("notes.txt", "just text\n"), "holds no PEM certificate"},
		"a key instead":        {write("key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "holds no PEM certificate"},
		"a broken certificate": {write("broken.pem", "\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "the certificate at line 2 does not parse"},
		"a directory":          {dir, "cannot be read"},
		"empty":                {"", "is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inv := httpapiSecret("      ca_file: '" + tc.file + "'\n")
			got, err := Load(writeTemp(t, inv))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got.Secrets[0].HTTPAPI.CAFile != tc.file {
					t.Errorf("CAFile = %q, want %q", got.Secrets[0].HTTPAPI.CAFile, tc.file)
				}
				return
			}
			probs := problemsOf(t, err)
			if len(probs) != 1 || probs[0].Line != 11 || probs[0].Field != "secrets[0].httpapi.ca_file" || !strings.Contains(probs[0].Message, tc.want) {
				t.Fatalf("want one problem at line 11 on httpapi.ca_file containing %q, got %v", tc.want, err)
			}
		})
	}
}
