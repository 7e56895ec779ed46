package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Defaults ApplyDefaults fills in.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultCreateMethod = http.MethodPost
	DefaultTestMethod   = http.MethodGet
	DefaultRevokeMethod = http.MethodDelete
)

// maxResponseBytes bounds every response the rotator reads: a create response holds an ID
// and a secret, and a runaway or hostile server must not exhaust the worker's memory.
const maxResponseBytes = 1 << 20

// IdempotencyHeader is the header the rotator sets on Create and Revoke. The rotator owns
// it, so a Call may not set it.
const IdempotencyHeader = "Idempotency-Key"

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Call describes one HTTP request. URL, header values and Body are Go text/template
// templates over Data.
type Call struct {
	// Method is the HTTP method. It defaults to POST for Create, GET for Test and DELETE
	// for Revoke, and is upper-cased.
	Method string
	// URL is an absolute http or https URL. Its scheme and host must be written out:
	// templates may only fill in the path and the query, where every value is
	// percent-encoded. It may never use .Admin or .Secret (see the package documentation).
	URL string
	// Headers maps header names to value templates.
	Headers map[string]string
	// Body is the request body template; empty sends none. Content-Type defaults to
	// application/json when a body is sent.
	Body string
	// Success lists the statuses that mean success; empty means any 2xx.
	Success []int
	// Gone lists the statuses that mean the key is already gone. Revoke counts them as
	// success; Test counts them, like 401 and 403, as the key being rejected. Create has
	// no use for them.
	Gone []int
}

// Config describes one API and how its keys are made, checked and deleted.
type Config struct {
	// Create makes a new key, authenticated with .Admin.
	Create Call
	// Test proves a key works: it must send .Secret in a header or the body, and may not
	// use .Admin, since an admin-authenticated call would prove nothing about the key.
	Test Call
	// Revoke deletes the key .KeyID, authenticated with .Admin.
	Revoke Call
	// InUse, when set, asks the API whether a key is still in use, for the revoke gate
	// [in_use]. Without it the rotator does not report usage at all (see Build).
	InUse *UsageCheck
	// KeyIDPath is the JSON path (dotted, e.g. "data.id", with [n] for array elements) of
	// the new key's ID in the create response; required. The ID becomes metadata, so it
	// must be an identifier, never the secret.
	KeyIDPath string
	// KeySecretPath is the JSON path of the new key's secret; required.
	KeySecretPath string
	// Admin is the admin credential for Create and Revoke (an API token, say), resolved
	// by the caller from a reference.
	Admin secret.Sensitive
	// Timeout bounds each request. Defaults to 10s.
	Timeout time.Duration
	// CABundle, if set, is PEM-encoded CA certificates (the inventory's ca_file) that
	// every call, Test included, trusts instead of the system's roots: for an API whose
	// certificate a private CA signs. See ParseCABundle.
	CABundle []byte
	// Client, if set, sends the requests (a test server's client, say). The rotator uses
	// a copy that does not follow redirects. Defaults to a client with Timeout, trusting
	// CABundle when it is set; Client and CABundle do not go together.
	Client *http.Client
	// TracerProvider, when set, gets a client span for each request
	// (telemetry/httpspans: the URL without its query string, no headers, no bodies);
	// nil traces nothing.
	TracerProvider trace.TracerProvider
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (c *Config) ApplyDefaults() {
	for _, x := range []struct {
		call   *Call
		method string
	}{{&c.Create, DefaultCreateMethod}, {&c.Test, DefaultTestMethod}, {&c.Revoke, DefaultRevokeMethod}} {
		if x.call.Method == "" {
			x.call.Method = x.method
		}
		x.call.Method = strings.ToUpper(x.call.Method)
	}
	if c.InUse != nil {
		in := *c.InUse // a copy: the caller's value is not changed
		in.ApplyDefaults()
		c.InUse = &in
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig. Fields that have defaults may be left empty. Problems are
// named by the inventory's field names ("create.url", "test.headers.Authorization").
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// problems collects configuration problems, each with the field it is about.
type problems []Problem

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	texts := make([]string, len(p))
	for i, x := range p {
		texts[i] = x.Field + ": " + x.Message
	}
	return fmt.Errorf("httpapi: %w: %s", rotators.ErrInvalidConfig, strings.Join(texts, "; "))
}

// checkCall checks what can be checked of a call without its templates.
func checkCall(p *problems, name string, c Call) {
	if !slices.Contains(methods, c.Method) {
		p.add(name+".method", "%q is not one of %s", c.Method, strings.Join(methods, ", "))
	}
	for _, s := range append(slices.Clone(c.Success), c.Gone...) {
		if s < 100 || s > 599 {
			p.add(name, "status %d is not an HTTP status (100 to 599)", s)
		}
	}
	for _, s := range c.Gone {
		if slices.Contains(c.Success, s) {
			p.add(name, "status %d is listed under both success and gone", s)
		}
	}
	if name == "create" && len(c.Gone) > 0 {
		p.add("create.gone", "create has no use for gone statuses; remove them")
	}
	seen := map[string]bool{}
	for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
		canonical := http.CanonicalHeaderKey(h)
		switch {
		case seen[canonical]:
			p.add(name+".headers", "%q is set twice (header names ignore case)", canonical)
		case !validHeaderName(h):
			p.add(name+".headers", "%q is not a valid header name", h)
		case canonical == IdempotencyHeader:
			p.add(name+".headers."+h, "the rotator sets %s itself (the version token), remove it", IdempotencyHeader)
		case canonical == "Host":
			p.add(name+".headers."+h, "the host comes from the URL, remove it")
		}
		seen[canonical] = true
	}
}

// validHeaderName reports whether h is an RFC 9110 token.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
