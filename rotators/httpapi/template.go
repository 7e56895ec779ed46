package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/keyturn/keyturn/secret"
)

// Data is what the templates of a Call see: {{.SecretID}}, {{.Token}}, {{.KeyID}},
// {{.Admin}} and {{.Secret}}.
//
// The two credentials are held as secret.Sensitive in unexported fields and reached only
// through the Admin and Secret methods, so a Data printed with fmt or slog shows
// [REDACTED] for them. The rotator fills them in only for the header and body templates
// of the calls that need them (Admin for Create and Revoke, Secret for Test); a URL
// template is always executed with both empty.
type Data struct {
	// SecretID is the Keyturn secret being rotated, e.g. "prod/payments/stripe".
	SecretID string
	// Token is the version token. Create sends it as the Idempotency-Key too; putting it
	// in the key's name or description ties the key to the Keyturn version.
	Token string
	// KeyID is the ID of the key concerned: empty for Create, the version's key for Test
	// and Revoke.
	KeyID string

	admin secret.Sensitive
	key   secret.Sensitive
}

// Admin returns the admin credential, for templates: it is the only place the rotator
// reveals it, and it is empty wherever the call does not need it.
func (d Data) Admin() string { return d.admin.Reveal() }

// Secret returns the secret of the key under test, for the Test call's templates; it is
// empty everywhere else.
func (d Data) Secret() string { return d.key.Reveal() }

// String prints the identifiers and hides the credentials.
func (d Data) String() string {
	return fmt.Sprintf("{SecretID:%s Token:%s KeyID:%s Admin:%s Secret:%s}", d.SecretID, d.Token, d.KeyID, secret.Redacted, secret.Redacted)
}

// Format implements fmt.Formatter: fmt would otherwise print the unexported fields raw,
// bypassing Sensitive's own redaction.
func (d Data) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, d.String()) }

// LogValue implements slog.LogValuer with the identifiers only.
func (d Data) LogValue() slog.Value {
	return slog.GroupValue(slog.String("secret_id", d.SecretID), slog.String("token", d.Token), slog.String("key_id", d.KeyID))
}

// forURL is the data a URL template sees: no credentials, and every value percent-encoded
// so that it stays one path segment or one query value whatever it holds.
func (d Data) forURL() Data {
	return Data{SecretID: escapeComponent(d.SecretID), Token: escapeComponent(d.Token), KeyID: escapeComponent(d.KeyID)}
}

// escapeComponent percent-encodes every byte but RFC 3986's unreserved characters, which
// is safe in a path segment and in a query value alike.
func escapeComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// funcs are the functions templates may call besides text/template's own: json quotes a
// string as a JSON string literal (for JSON bodies), base64 encodes one (for Basic auth:
// {{printf "%s:" .Secret | base64}}).
var funcs = template.FuncMap{
	"json": func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s) // a string always encodes
		return strings.TrimSuffix(b.String(), "\n")
	},
	"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
}

// sample is the data New executes every template with, to catch unknown fields and
// functions that fail before the first rotation does.
var sample = Data{
	SecretID: "sample/secret", Token: "sample-token", KeyID: "sample-key",
	admin: secret.NewSensitive("sample-admin"), key: secret.NewSensitive("sample-secret"),
}

// compiledCall is a Call with its templates parsed.
type compiledCall struct {
	name    string
	method  string
	url     *template.Template
	headers []compiledHeader
	body    *template.Template // nil when the call sends no body
	success []int
	gone    []int
}

type compiledHeader struct {
	name  string
	value *template.Template
}

// uses reports whether t refers to a field or method called name anywhere, in any of the
// templates it defines. The walk is deliberately broad: {{.Admin}}, {{$.Admin}},
// {{$d.Admin}} and {{(.).Admin}} all count.
func uses(t *template.Template, name string) bool {
	for _, tt := range t.Templates() {
		if tt.Tree != nil && nodeUses(tt.Tree.Root, name) {
			return true
		}
	}
	return false
}

func nodeUses(n parse.Node, name string) bool {
	has := func(idents []string) bool {
		for _, id := range idents {
			if id == name {
				return true
			}
		}
		return false
	}
	switch n := n.(type) {
	case nil:
		return false
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if nodeUses(c, name) {
				return true
			}
		}
	case *parse.ActionNode:
		return nodeUses(n.Pipe, name)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			if nodeUses(c, name) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if nodeUses(a, name) {
				return true
			}
		}
	case *parse.FieldNode:
		return has(n.Ident)
	case *parse.VariableNode:
		return has(n.Ident[1:]) // Ident[0] is the variable's own name
	case *parse.ChainNode:
		return has(n.Field) || nodeUses(n.Node, name)
	case *parse.IfNode:
		return nodeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.RangeNode:
		return nodeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.WithNode:
		return nodeUses(n.Pipe, name) || nodeUses(n.List, name) || nodeUses(n.ElseList, name)
	case *parse.TemplateNode:
		return nodeUses(n.Pipe, name)
	}
	return false
}

// compileCall parses and checks one call, adding what is wrong to p. What holds a
// credential is checked statically here and, for URLs, again at run time (the URL is
// executed with no credentials), so one slip in either check cannot leak one.
func compileCall(p *problems, name string, c Call, admin secret.Sensitive) compiledCall {
	checkCall(p, name, c)
	cc := compiledCall{name: name, method: c.Method, success: c.Success, gone: c.Gone}
	n := len(*p)

	if c.URL == "" {
		p.add(name+".url", "is empty")
	} else if t := parseTemplate(p, name+".url", c.URL); t != nil {
		cc.url = t
		for _, field := range []string{"Admin", "Secret"} {
			if uses(t, field) {
				p.add(name+".url", "uses .%s, but URLs end up in access logs, proxies and error messages: send the credential in a header (e.g. Authorization: Bearer {{.%s}}) or in the body instead", field, field)
			}
		}
		checkURL(p, name+".url", c.URL, t)
	}

	var withSecret []string
	var withAdmin []string
	note := func(field string, t *template.Template) {
		if uses(t, "Secret") {
			withSecret = append(withSecret, field)
		}
		if uses(t, "Admin") {
			withAdmin = append(withAdmin, field)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
		field := name + ".headers." + h
		if t := parseTemplate(p, field, c.Headers[h]); t != nil {
			cc.headers = append(cc.headers, compiledHeader{name: h, value: t})
			note(field, t)
		}
	}
	if c.Body != "" {
		if t := parseTemplate(p, name+".body", c.Body); t != nil {
			cc.body = t
			note(name+".body", t)
		}
	}

	if name == "test" {
		for _, f := range withAdmin {
			p.add(f, "uses .Admin, but test must authenticate with the new key ({{.Secret}}): a call made as the admin proves nothing about the key")
		}
		if len(withSecret) == 0 {
			p.add("test", "no header or body uses {{.Secret}}, so the test would not prove the new key works: send it the way the API expects, e.g. Authorization: Bearer {{.Secret}}")
		}
	} else {
		for _, f := range withSecret {
			p.add(f, "%s", secretRefusal(name))
		}
		if len(withAdmin) > 0 && admin.IsZero() {
			p.add("admin", "is empty, but %s uses .Admin", strings.Join(withAdmin, " and "))
		}
	}

	if len(*p) == n {
		// Only a call that passed every other check is tried with sample data, so that
		// one mistake is not reported twice.
		if _, err := cc.render(sample); err != nil {
			p.add(name, "%v (templates may use .SecretID, .Token, .KeyID, .Admin, .Secret and the functions json and base64)", err)
		}
	}
	return cc
}

func parseTemplate(p *problems, field, text string) *template.Template {
	t, err := template.New(field).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		p.add(field, "%v", err)
		return nil
	}
	return t
}

// checkURL requires an absolute http(s) URL whose scheme and host are literal text: the
// key ID comes from the API's own response, and if it could choose the host it could
// send the admin credential anywhere.
func checkURL(p *problems, field, raw string, t *template.Template) {
	prefix, templated := raw, false
	if i := strings.Index(raw, "{{"); i >= 0 {
		prefix, templated = raw[:i], true
	}
	u, err := url.Parse(prefix)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.add(field, "must be an absolute http:// or https:// URL with the scheme and host written out, e.g. https://api.example.com/v1/keys/{{.KeyID}}")
		return
	case u.User != nil:
		p.add(field, "holds a user name or password; send credentials in a header instead")
		return
	case templated && !strings.ContainsAny(prefix[len(u.Scheme)+len("://"):], "/?"):
		p.add(field, "the scheme and host must be written out: templates may only fill in the path and the query")
		return
	}
	var b strings.Builder
	if err := t.Execute(&b, sample.forURL()); err == nil {
		if u, err := url.Parse(b.String()); err != nil || u.Host == "" {
			p.add(field, "is not a valid URL once filled in")
		}
	}
}

// rendered is a call ready to send.
type rendered struct {
	url     *url.URL
	headers map[string]string
	body    []byte
}

// render executes the call's templates: the URL with the credentials left out, headers
// and body with d as given.
func (c compiledCall) render(d Data) (rendered, error) {
	var r rendered
	var b strings.Builder
	if err := c.url.Execute(&b, d.forURL()); err != nil {
		return r, err
	}
	u, err := url.Parse(b.String())
	if err != nil {
		return r, fmt.Errorf("%s.url is not a valid URL once filled in", c.name)
	}
	r.url = u
	r.headers = make(map[string]string, len(c.headers))
	for _, h := range c.headers {
		b.Reset()
		if err := h.value.Execute(&b, d); err != nil {
			return r, err
		}
		if strings.ContainsAny(b.String(), "\r\n\x00") {
			return r, fmt.Errorf("%s.headers.%s holds a line break or NUL once filled in", c.name, h.name)
		}
		r.headers[h.name] = b.String()
	}
	if c.body != nil {
		var body bytes.Buffer
		if err := c.body.Execute(&body, d); err != nil {
			return r, err
		}
		r.body = body.Bytes()
	}
	return r, nil
}
