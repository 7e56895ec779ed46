package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"text/template"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

func TestDataNeverPrintsCredentials(t *testing.T) {
	d := Data{SecretID: "prod/x", Token: "tok", KeyID: "key_1", admin: secret.NewSensitive("admin-value"), key: secret.NewSensitive("key-value")}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("data", "d", d, "p", &d)
	for _, got := range []string{
		fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s %q %x", d, d, d, d, d, d), fmt.Sprintf("%+v", &d),
		fmt.Sprintf("%+v", struct{ D Data }{d}), logged.String(),
	} {
		if strings.Contains(got, "admin-value") || strings.Contains(got, "key-value") {
			t.Errorf("printed a credential: %s", got)
		}
		if !strings.Contains(got, "key_1") {
			t.Errorf("printed without the key ID: %s", got)
		}
	}
	if d.Admin() != "admin-value" || d.Secret() != "key-value" {
		t.Error("the template accessors must reveal the credentials")
	}
}

// A URL template is executed without credentials even if the static check were bypassed,
// and every value it inserts is percent-encoded.
func TestURLIsRenderedWithoutCredentials(t *testing.T) {
	c := compiledCall{
		name:   "revoke",
		method: "DELETE",
		url:    template.Must(template.New("u").Parse("https://api.example.com/v1/{{.KeyID}}?a={{.Admin}}&s={{.Secret}}&id={{.SecretID}}&t={{.Token}}")),
	}
	d := Data{SecretID: "prod/app", Token: "run 1&x=y", KeyID: "../key?#", admin: secret.NewSensitive("admin-value"), key: secret.NewSensitive("key-value")}
	r, err := c.render(d)
	if err != nil {
		t.Fatal(err)
	}
	const want = "https://api.example.com/v1/..%2Fkey%3F%23?a=&s=&id=prod%2Fapp&t=run%201%26x%3Dy"
	if got := r.url.String(); got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
	if got := redactURL(r.url); got != "https://api.example.com/v1/..%2Fkey%3F%23" {
		t.Errorf("redactURL = %s, want the path without the query", got)
	}
}

func TestUses(t *testing.T) {
	for text, want := range map[string]bool{
		"{{.Admin}}":                                        true,
		"{{$.Admin}}":                                       true,
		"{{$x := .}}{{$x.Admin}}":                           true,
		"{{(.).Admin}}":                                     true,
		"{{with .}}{{.Admin}}{{end}}":                       true,
		"{{if .Token}}x{{else}}{{.Admin}}{{end}}":           true,
		"{{range $i, $c := .Token}}{{end}}{{.Admin}}":       true,
		`{{printf "%s" .Admin | base64}}`:                   true,
		`{{define "a"}}{{.Admin}}{{end}}{{template "a" .}}`: true,
		"{{.Token}} Admin {{/* .Admin */}}":                 false,
		"{{.AdminName}}":                                    false,
		`{{"Admin"}}`:                                       false,
	} {
		tmpl, err := template.New("t").Funcs(funcs).Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if got := uses(tmpl, "Admin"); got != want {
			t.Errorf("uses(%s) = %v, want %v", text, got, want)
		}
	}
}

func TestFuncs(t *testing.T) {
	tmpl := template.Must(template.New("t").Funcs(funcs).Parse(`{{json .Token}} {{printf "%s:" .Secret | base64}}`))
	var b strings.Builder
	if err := tmpl.Execute(&b, Data{Token: `a"b<c>\`, key: secret.NewSensitive("sk")}); err != nil {
		t.Fatal(err)
	}
	if want := `"a\"b<c>\\" c2s6`; b.String() != want {
		t.Errorf("got %s, want %s", b.String(), want)
	}
}

func TestScrub(t *testing.T) {
	admin := secret.NewSensitive("admin-value")
	plain := fmt.Errorf("dial tcp: refused")
	if got := scrub(plain, admin); got != plain {
		t.Errorf("an error without the secret must come back unchanged, got %v", got)
	}
	leaky := fmt.Errorf("bad header admin-value: %w", rotators.ErrInvalidConfig)
	got := scrub(leaky, admin, secret.Sensitive{})
	if strings.Contains(got.Error(), "admin-value") || !strings.Contains(got.Error(), secret.Redacted) {
		t.Errorf("scrub = %q", got)
	}
	if !errors.Is(got, rotators.ErrInvalidConfig) {
		t.Error("scrub must keep the rotators sentinel")
	}
}
