package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// maxRendered bounds what one template may produce: a runaway range must not fill a disk.
const maxRendered = 4 << 20

// defaultPEMFields is the pem format's order when fields is not set: the certificate,
// its chain, then the key, the "full chain plus key" bundle HAProxy and many proxies read.
var defaultPEMFields = []string{certs.FieldCertificate, certs.FieldCAChain, certs.FieldPrivateKey}

// render turns the value into the file's bytes. Errors name the secret, the template and
// fields; they never hold material.
func (t *Template) render(v consumer.Value) ([]byte, error) {
	var out []byte
	var err error
	switch t.Format {
	case FormatRaw:
		out, err = renderRaw(t, v)
	case FormatEnv:
		out, err = renderEnv(t, v)
	case FormatJSON:
		out, err = renderJSON(t, v)
	case FormatPEM:
		out, err = renderPEM(t, v)
	case FormatTemplate:
		out, err = renderTemplate(t, v)
	default:
		err = fmt.Errorf("unknown format %q", t.Format)
	}
	if err != nil {
		return nil, fmt.Errorf("render %s from %s version %d: %w", t.Destination, t.Secret, v.Version.Number, err)
	}
	return out, nil
}

// field returns a material field, or an error naming the fields there are.
func field(v consumer.Value, name string) (string, error) {
	s, ok := v.Material[name]
	if !ok {
		return "", fmt.Errorf("the secret has no field %q; its fields are %s", name, strings.Join(fieldNames(v), ", "))
	}
	return s.Reveal(), nil
}

func fieldNames(v consumer.Value) []string {
	names := make([]string, 0, len(v.Material))
	for n := range v.Material {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// selected is the fields a format writes: the template's list, else every field sorted.
func selected(t *Template, v consumer.Value) []string {
	if len(t.Fields) > 0 {
		return t.Fields
	}
	return fieldNames(v)
}

func renderRaw(t *Template, v consumer.Value) ([]byte, error) {
	name := ""
	switch {
	case len(t.Fields) == 1:
		name = t.Fields[0]
	case len(v.Material) == 1:
		name = fieldNames(v)[0]
	default:
		return nil, fmt.Errorf("format raw writes one field and the secret has %d (%s); pick one with fields: [name]", len(v.Material), strings.Join(fieldNames(v), ", "))
	}
	s, err := field(v, name)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// renderEnv writes NAME=value lines: the chosen fields, then the metadata (a user name,
// a role), which a program needs beside the password. A value made only of characters
// every env-file reader takes literally is written bare (docker --env-file keeps quotes);
// any other is single-quoted, which sh, systemd and dotenv readers all read literally. A
// value holding a quote or a line break cannot be written safely for all of them and is
// refused: use json or a template for it.
func renderEnv(t *Template, v consumer.Value) ([]byte, error) {
	var b bytes.Buffer
	seen := map[string]string{}
	line := func(kind, name, value string) error {
		key := envName(t.EnvPrefix, name)
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s %q and %s both become %s; rename one, or use a template", kind, name, prev, key)
		}
		seen[key] = fmt.Sprintf("%s %q", kind, name)
		if strings.ContainsAny(value, "'\n\r\x00") {
			return fmt.Errorf("%s %q holds a quote or a line break, which env files cannot carry safely; use format json or a template", kind, name)
		}
		if bare(value) {
			fmt.Fprintf(&b, "%s=%s\n", key, value)
		} else {
			fmt.Fprintf(&b, "%s='%s'\n", key, value)
		}
		return nil
	}
	for _, name := range selected(t, v) {
		s, err := field(v, name)
		if err != nil {
			return nil, err
		}
		if err := line("field", name, s); err != nil {
			return nil, err
		}
	}
	if len(t.Fields) == 0 {
		for _, k := range sortedKeys(v.Version.Metadata) {
			if err := line("metadata", k, v.Version.Metadata[k]); err != nil {
				return nil, err
			}
		}
	}
	return b.Bytes(), nil
}

// bare reports whether s needs no quoting in any env-file dialect.
func bare(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.,:/@%+=", c)
		if !ok {
			return false
		}
	}
	return true
}

// envName turns a field name into an environment variable name: upper case, and every
// character but letters and digits becomes _ (private_key -> PRIVATE_KEY).
func envName(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, c := range strings.ToUpper(name) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// jsonDoc is the json format's layout.
type jsonDoc struct {
	SecretID  string            `json:"secret_id"`
	Version   int               `json:"version"`
	Token     string            `json:"token"`
	CreatedAt time.Time         `json:"created_at"`
	Metadata  map[string]string `json:"metadata"`
	Data      map[string]string `json:"data"`
}

func renderJSON(t *Template, v consumer.Value) ([]byte, error) {
	doc := jsonDoc{
		SecretID: string(v.Version.SecretID), Version: v.Version.Number, Token: string(v.Version.Token),
		CreatedAt: v.Version.CreatedAt.UTC(), Metadata: v.Version.Metadata, Data: map[string]string{},
	}
	if doc.Metadata == nil {
		doc.Metadata = map[string]string{}
	}
	for _, name := range selected(t, v) {
		s, err := field(v, name)
		if err != nil {
			return nil, err
		}
		doc.Data[name] = s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		// Strings always encode; keep the message free of the value anyway.
		return nil, errors.New("encode json")
	}
	return b.Bytes(), nil
}

// renderPEM concatenates PEM fields in order, each checked to be PEM so a field that is
// not (a password) is never written into a certificate bundle. An absent ca_chain is
// skipped, whether the list is the default or names it: a certificate issued straight
// from a root has none (a vaultpki version may hold no chain), and the same template has
// to work for every version. Any other missing field (the certificate, the key) is an
// error.
func renderPEM(t *Template, v consumer.Value) ([]byte, error) {
	names := t.Fields
	if len(names) == 0 {
		names = defaultPEMFields
	}
	var b bytes.Buffer
	for _, name := range names {
		if _, ok := v.Material[name]; !ok && name == certs.FieldCAChain {
			continue
		}
		text, err := field(v, name)
		if err != nil {
			return nil, err
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if blk, _ := pem.Decode([]byte(text)); blk == nil {
			return nil, fmt.Errorf("field %q is not PEM; format pem takes certificate, ca_chain and private_key fields", name)
		}
		b.WriteString(text)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// templateData is what a template sees as dot: the version's handles, never material.
// Material is reached through the field function, so {{.}} prints nothing secret.
type templateData struct {
	SecretID  string
	Version   int
	Token     string
	CreatedAt time.Time
	Metadata  map[string]string
}

// templateFuncs are the functions a template may call. field and meta are bound to the
// value at render time; those given here make a typo in their names a parse error.
func templateFuncs(v *consumer.Value) template.FuncMap {
	return template.FuncMap{
		"field": func(name string) (string, error) {
			if v == nil {
				return "", nil
			}
			return field(*v, name)
		},
		"hasField": func(name string) bool {
			if v == nil {
				return false
			}
			_, ok := v.Material[name]
			return ok
		},
		"meta": func(key string) (string, error) {
			if v == nil {
				return "", nil
			}
			m, ok := v.Version.Metadata[key]
			if !ok {
				return "", fmt.Errorf("the version has no metadata %q; it has %s", key, strings.Join(sortedKeys(v.Version.Metadata), ", "))
			}
			return m, nil
		},
		"json": func(s string) string {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s)
			return strings.TrimSuffix(b.String(), "\n")
		},
		"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"sh":     shQuote,
	}
}

// parseTemplate parses a template with the agent's functions; a missing key in a map is
// an error rather than "<no value>" in a config file.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(templateFuncs(nil)).Parse(text)
}

func renderTemplate(t *Template, v consumer.Value) ([]byte, error) {
	tpl, err := t.parsed.Clone()
	if err != nil {
		return nil, fmt.Errorf("clone template: %w", err)
	}
	tpl.Funcs(templateFuncs(&v))
	data := templateData{
		SecretID: string(v.Version.SecretID), Version: v.Version.Number, Token: string(v.Version.Token),
		CreatedAt: v.Version.CreatedAt, Metadata: v.Version.Metadata,
	}
	var b limitedBuffer
	if err := tpl.Execute(&b, data); err != nil {
		// text/template's messages quote the template, not data, but a function's
		// result can reach one (an index error on a field, say): scrub every field's
		// value from it before it goes anywhere.
		return nil, errors.New(scrub(err.Error(), v.Material))
	}
	return b.Bytes(), nil
}

// limitedBuffer is a bytes.Buffer that refuses to grow past maxRendered.
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > maxRendered {
		return 0, fmt.Errorf("the template writes more than %d bytes", maxRendered)
	}
	return l.Buffer.Write(p)
}

// scrub replaces every material value found in s with [REDACTED], longest first so a
// value holding another is not left half visible. Each value is looked for as it is and
// in the forms the template functions write it (JSON-escaped, sh-quoted, base64), since a
// reload command that prints its configuration prints it as rendered. It is a best effort
// for text the agent does not control (a reload command's output). Values shorter than
// four bytes are left alone: they would redact ordinary words, and are no secret anyway.
func scrub(s string, ms ...secret.Material) string {
	seen := map[string]bool{}
	var vals []string
	add := func(v string) {
		if len(v) >= 4 && !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	for _, m := range ms {
		for _, v := range m {
			val := v.Reveal()
			if len(val) < 4 {
				continue
			}
			add(val)
			if q, err := json.Marshal(val); err == nil {
				add(string(q[1 : len(q)-1]))
			}
			add(shQuote(val))
			add(base64.StdEncoding.EncodeToString([]byte(val)))
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, val := range vals {
		s = strings.ReplaceAll(s, val, secret.Redacted)
	}
	return s
}

// shQuote quotes a string for a POSIX shell: in single quotes, each quote inside written
// as a closing quote, an escaped quote and an opening quote.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
