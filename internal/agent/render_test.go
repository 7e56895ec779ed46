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
	// The nginx example lists the chain explicitly: a version without one (a vaultpki
	// certificate issued by a root) still renders, as the certificate alone.
	got, err = tmpl(t, FormatPEM, "", "certificate", "ca_chain").render(v)
	if err != nil || string(got) != certPEM {
		t.Fatalf("[certificate, ca_chain] without a chain: %v\n%s", err, got)
	}
	// With a chain it is written after the certificate.
	withChain := value(map[string]string{"certificate": certPEM, "ca_chain": certPEM, "private_key": keyPEM}, nil)
	got, err = tmpl(t, FormatPEM, "", "certificate", "ca_chain").render(withChain)
	if err != nil || string(got) != certPEM+certPEM {
		t.Fatalf("[certificate, ca_chain] with a chain: %v\n%s", err, got)
	}
	// A missing certificate or key is still an error, listed or by default.
	for _, fields := range [][]string{{"certificate", "ca_chain"}, {"certificate", "private_key"}, nil} {
		_, err = tmpl(t, FormatPEM, "", fields...).render(value(map[string]string{"ca_chain": certPEM}, nil))
		if err == nil || !strings.Contains(err.Error(), `the secret has no field "certificate"`) {
			t.Fatalf("pem %v without a certificate = %v", fields, err)
		}
	}
	_, err = tmpl(t, FormatPEM, "", "certificate", "private_key").render(value(map[string]string{"certificate": certPEM}, nil))
	if err == nil || !strings.Contains(err.Error(), `the secret has no field "private_key"`) {
		t.Fatalf("pem without its key = %v", err)
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

	// The forms the template functions write are scrubbed too, and every material given
	// (this pass's, what the files hold, what they held before) is looked for.
	old := secret.Material{"password": secret.NewSensitive("it's-" + planted)}
	cur := secret.Material{"password": secret.NewSensitive("new-" + planted)}
	tp := tmpl(t, FormatTemplate, `b64={{ field "password" | base64 }} sh={{ field "password" | sh }} json={{ field "password" | json }}`)
	for _, m := range []secret.Material{old, cur} {
		out, err := tp.render(consumer.Value{Version: secret.Version{SecretID: "prod/app/db", Number: 1}, Material: m})
		if err != nil {
			t.Fatal(err)
		}
		got := scrub(string(out), cur, old)
		if want := `b64=[REDACTED] sh=[REDACTED] json="[REDACTED]"`; got != want {
			t.Fatalf("scrub of the rendered forms = %q, want %q", got, want)
		}
	}
}
