package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

func value(fields map[string]string, meta map[string]string) consumer.Value {
	m := secret.Material{}
	for k, v := range fields {
		m[k] = secret.NewSensitive(v)
	}
	return consumer.Value{
		Version:  secret.Version{SecretID: "prod/app/db", Token: "rotate/prod/app/db/run-7", Number: 7, CreatedAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Metadata: meta},
		Material: m,
	}
}

func tmpl(t *testing.T, format, text string, fields ...string) *Template {
	t.Helper()
	tp := &Template{Secret: "prod/app/db", Destination: "/run/app/out", Format: format, Text: text, Fields: fields}
	if format == FormatTemplate {
		p, err := parseTemplate(tp.Destination, text)
		if err != nil {
			t.Fatal(err)
		}
		tp.parsed = p
	}
	return tp
}

func TestFormats(t *testing.T) {
	v := value(map[string]string{"password": "pa55/word+x=", "api_key": "k y$z"}, map[string]string{"username": "app_b"})
	for name, tc := range map[string]struct {
		t    *Template
		want string
	}{
		"raw, one field chosen": {tmpl(t, FormatRaw, "", "password"), "pa55/word+x="},
		"env":                   {tmpl(t, FormatEnv, ""), "API_KEY='k y$z'\nPASSWORD=pa55/word+x=\nUSERNAME=app_b\n"},
		"env with prefix":       {&Template{Format: FormatEnv, EnvPrefix: "DB_", Fields: []string{"password"}}, "DB_PASSWORD=pa55/word+x=\n"},
		"template": {tmpl(t, FormatTemplate, `{{.SecretID}} v{{.Version}} user={{meta "username"}} pw={{field "password" | json}} {{if hasField "nope"}}x{{else}}no-nope{{end}} {{field "api_key" | sh}}`),
			`prod/app/db v7 user=app_b pw="pa55/word+x=" no-nope 'k y$z'`},
		"template dot holds no material": {tmpl(t, FormatTemplate, `{{.}}`), ""},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := tc.t.render(v)
			if err != nil {
				t.Fatal(err)
			}
			if name == "template dot holds no material" {
				if strings.Contains(string(got), "pa55") || !strings.Contains(string(got), "app_b") {
					t.Fatalf("{{.}} = %q: want the version's handles and no material", got)
				}
				return
			}
			if string(got) != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}

	got, err := tmpl(t, FormatJSON, "").render(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc jsonDoc
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SecretID != "prod/app/db" || doc.Version != 7 || doc.Data["password"] != "pa55/word+x=" || doc.Data["api_key"] != "k y$z" || doc.Metadata["username"] != "app_b" {
		t.Fatalf("json = %s", got)
	}
}

func TestPEMBundle(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmplCert := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmplCert, tmplCert, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	v := value(map[string]string{"certificate": certPEM, "private_key": keyPEM}, nil)

	got, err := tmpl(t, FormatPEM, "").render(v)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for rest := got; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		types = append(types, b.Type)
	}
	if strings.Join(types, ",") != "CERTIFICATE,PRIVATE KEY" {
		t.Fatalf("default bundle holds %v, want the certificate then the key (no chain in this secret)", types)
	}
	got, err = tmpl(t, FormatPEM, "", "certificate").render(v)
	if err != nil || string(got) != certPEM {
		t.Fatalf("certificate only: %v\n%s", err, got)
	}
	// A password is never written into a bundle.
	_, err = tmpl(t, FormatPEM, "", "password").render(value(map[string]string{"password": "not-pem-" + planted}, nil))
	if err == nil || !strings.Contains(err.Error(), `field "password" is not PEM`) || strings.Contains(err.Error(), planted) {
		t.Fatalf("pem of a password = %v", err)
	}
}

// Render errors name the destination, the secret, its version and the field, never a value.
func TestRenderErrorsHoldNoMaterial(t *testing.T) {
	v := value(map[string]string{"password": planted, "other": "x" + planted}, map[string]string{"username": "app"})
	for name, tc := range map[string]struct {
		t    *Template
		want string
	}{
		"raw of two fields":   {tmpl(t, FormatRaw, ""), "pick one with fields"},
		"missing field":       {tmpl(t, FormatRaw, "", "pasword"), `no field "pasword"; its fields are other, password`},
		"env of a quote":      {tmpl(t, FormatEnv, ""), ""},
		"template, no field":  {tmpl(t, FormatTemplate, `{{field "pasword"}}`), `no field "pasword"`},
		"template, no meta":   {tmpl(t, FormatTemplate, `{{meta "user"}}`), `no metadata "user"; it has username`},
		"template, bad index": {tmpl(t, FormatTemplate, `{{index (field "password") 99}}`), "index out of range"},
		"template, bad call":  {tmpl(t, FormatTemplate, `{{ (field "password").Foo }}`), "can't evaluate field Foo"},
		"template, printf":    {tmpl(t, FormatTemplate, `{{ printf "%s" (field "password") | meta }}`), `no metadata "[REDACTED]"`},
	} {
		t.Run(name, func(t *testing.T) {
			vv := v
			if name == "env of a quote" {
				vv = value(map[string]string{"password": "it's-" + planted}, nil)
				tc.want = "holds a quote or a line break"
			}
			_, err := tc.t.render(vv)
			if err == nil {
				t.Fatal("render succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "prod/app/db version 7") {
				t.Errorf("error lacks %q or the secret and version: %v", tc.want, err)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("error holds material: %v", err)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	m := secret.Material{"a": secret.NewSensitive(`pa"ss\word`), "b": secret.NewSensitive("abc"), "c": secret.NewSensitive("long-" + planted)}
	got := scrub(`raw pa"ss\word json "pa\"ss\\word" `+"long-"+planted+" abc", m)
	if want := "raw [REDACTED] json \"[REDACTED]\" [REDACTED] abc"; got != want {
		t.Fatalf("scrub = %q, want %q", got, want)
	}
}
