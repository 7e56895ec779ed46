package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// testPEM is a multi-line value of the shape that a one-line read used to cut short.
const testPEM = "-----BEGIN PRIVATE KEY-----\n" +
	"MC4CAQAwBQYDK2VwBCIEIKc7bq0VbVdWIZbNyq7kLD0zJ9M6nR6a5hk1I2fQ0x3X\n" +
	"-----END PRIVATE KEY-----\n"

// revealed reads a field's current value back twice, through `keyturn get --reveal -o
// json` and through the store itself, and fails unless both agree.
func revealed(t *testing.T, store string, id secret.ID, field string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), []string{"get", string(id), "--store-dir", store, "--reveal", "-o", "json"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("get --reveal: exit %d: %s", code, errOut.String())
	}
	var view struct {
		Value map[string]string `json:"value"`
	}
	if err := json.Unmarshal(out.Bytes(), &view); err != nil {
		t.Fatalf("decode get -o json: %v", err)
	}
	s, err := file.Open(store)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	_, m, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
	if got := m.Get(field).Reveal(); got != view.Value[field] {
		t.Fatalf("get --reveal and the store disagree on %s (%d and %d bytes)", field, len(view.Value[field]), len(got))
	}
	return view.Value[field]
}

func TestPutKeepsTheBytes(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"multi-line PEM":            {testPEM, testPEM},
		"PEM without final newline": {strings.TrimSuffix(testPEM, "\n"), strings.TrimSuffix(testPEM, "\n")},
		"PEM with CRLF":             {strings.ReplaceAll(testPEM, "\n", "\r\n"), strings.ReplaceAll(testPEM, "\n", "\r\n")},
		"echoed password":           {"s3cret\n", "s3cret"},
		"password with CRLF":        {"s3cret\r\n", "s3cret"},
		"password without newline":  {"s3cret", "s3cret"},
		"only one newline stripped": {"s3cret\n\n", "s3cret\n\n"},
		"spaces kept":               {"  pass word \t\n", "  pass word \t"},
		"non-ASCII text":            {"pässwörd-🔑\n", "pässwörd-🔑"},
	} {
		t.Run(name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "store")
			code, out := run(t, tc.in, "put", "admin/x", "--field", "value", "--store-dir", store)
			if code != 0 || !strings.Contains(out, "stored admin/x version 1") {
				t.Fatalf("put: %d\n%s", code, out)
			}
			if got := revealed(t, store, "admin/x", "value"); got != tc.want {
				t.Fatalf("stored %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPutFromFile(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	pemPath := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(pemPath, []byte(testPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	// Stdin holds something else: --from-file must win, not mix the two.
	code, out := run(t, "not this\n", "put", "admin/tls", "--field", "private_key", "--from-file", pemPath, "--store-dir", store)
	if code != 0 {
		t.Fatalf("put --from-file: %d\n%s", code, out)
	}
	if got := revealed(t, store, "admin/tls", "private_key"); got != testPEM {
		t.Fatalf("stored %q, want the PEM byte for byte", got)
	}

	code, out = run(t, "", "put", "admin/tls", "--from-file", filepath.Join(dir, "missing.pem"), "--store-dir", store)
	if code != 1 || !strings.Contains(out, "missing.pem") {
		t.Fatalf("put --from-file of a missing file: %d\n%s", code, out)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = run(t, "", "put", "admin/tls", "--from-file", empty, "--store-dir", store)
	if code != 1 || !strings.Contains(out, "is empty") {
		t.Fatalf("put --from-file of an empty file: %d\n%s", code, out)
	}
}

func TestPutBinary(t *testing.T) {
	binary := "\x00\x01\xfe\xffDER\x30\x82\n\x80"
	store := filepath.Join(t.TempDir(), "store")
	code, out := run(t, binary, "put", "admin/bin", "--store-dir", store)
	if code != 1 || !strings.Contains(out, "binary") || !strings.Contains(out, "--base64") {
		t.Fatalf("put of binary input: %d\n%s", code, out)
	}
	assertNoStore(t, store)

	code, out = run(t, binary, "put", "admin/bin", "--base64", "--field", "der", "--store-dir", store)
	if code != 0 {
		t.Fatalf("put --base64: %d\n%s", code, out)
	}
	got, err := base64.StdEncoding.DecodeString(revealed(t, store, "admin/bin", "der"))
	if err != nil || string(got) != binary {
		t.Fatalf("base64 value decodes to %q (err %v), want the input bytes", got, err)
	}
}

func TestPutRefusesOversizedInput(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	big := strings.Repeat("A", maxPutSize) + "\n"
	code, out := run(t, big, "put", "admin/big", "--store-dir", store)
	if code != 1 || !strings.Contains(out, "larger than 64 KiB") || !strings.Contains(out, "nothing written") {
		t.Fatalf("put of %d bytes: %d\n%s", len(big), code, out)
	}
	assertNoStore(t, store)
	bigFile := filepath.Join(dir, "big")
	if err := os.WriteFile(bigFile, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = run(t, "", "put", "admin/big", "--from-file", bigFile, "--store-dir", store)
	if code != 1 || !strings.Contains(out, "larger than 64 KiB") {
		t.Fatalf("put --from-file of %d bytes: %d\n%s", len(big), code, out)
	}
	assertNoStore(t, store)

	// The cap itself is allowed.
	atCap := strings.Repeat("A", maxPutSize)
	if code, out := run(t, atCap, "put", "admin/big", "--store-dir", store); code != 0 {
		t.Fatalf("put of exactly %d bytes: %d\n%s", maxPutSize, code, out)
	}
	if got := revealed(t, store, "admin/big", "password"); got != atCap {
		t.Fatalf("stored %d bytes, want %d", len(got), len(atCap))
	}
}

// assertNoStore fails if a refused put created the store.
func assertNoStore(t *testing.T, store string) {
	t.Helper()
	if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused put left %s behind (stat: %v)", store, err)
	}
}

// A managed secret's recorded version must carry the handle of its kind (here an IAM
// access key ID, not a Postgres role), as the rotators' own hints say.
func TestPutAsksForTheHandleOfTheKind(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.yaml")
	if err := os.WriteFile(inv, []byte("version: 1\nsecrets:\n  - id: prod/aws\n    kind: awsiam\n    awsiam:\n      user: app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store")
	var out bytes.Buffer
	code := Execute(context.Background(), []string{"put", "prod/aws", "-f", inv, "--store-dir", store, "--field", "secret_access_key"}, strings.NewReader("not-a-real-secret\n"), &out, &out)
	if code == 0 || !strings.Contains(out.String(), "--meta access_key_id=") || strings.Contains(out.String(), "role=") {
		t.Fatalf("put of an awsiam secret without its key ID must ask for access_key_id; exit %d:\n%s", code, out.String())
	}
	out.Reset()
	code = Execute(context.Background(), []string{"put", "prod/aws", "-f", inv, "--store-dir", store, "--field", "secret_access_key", "--meta", "access_key_id=AKIAEXAMPLE"}, strings.NewReader("not-a-real-secret\n"), &out, &out)
	if code != 0 {
		t.Fatalf("put with the key ID exited %d:\n%s", code, out.String())
	}
}
