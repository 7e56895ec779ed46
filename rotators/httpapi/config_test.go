package httpapi_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/secret"
)

const (
	base       = "https://api.example.com"
	adminValue = "admin-token-do-not-print"
)

func validConfig() httpapi.Config { return configFor(base, adminValue) }

func TestConfigDefaults(t *testing.T) {
	cfg := validConfig()
	cfg.Create.Method, cfg.Test.Method, cfg.Revoke.Method = "", "", "patch"
	cfg.ApplyDefaults()
	if cfg.Create.Method != "POST" || cfg.Test.Method != "GET" || cfg.Revoke.Method != "PATCH" || cfg.Timeout != httpapi.DefaultTimeout {
		t.Errorf("defaults not applied: methods %s %s %s, timeout %v", cfg.Create.Method, cfg.Test.Method, cfg.Revoke.Method, cfg.Timeout)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(*httpapi.Config)
		want []string // substrings of the error; none means valid
	}{
		"example":           {edit: func(*httpapi.Config) {}},
		"query template":    {edit: func(c *httpapi.Config) { c.Test.URL = base + "/v1/whoami?key={{.KeyID}}&s={{.SecretID}}" }},
		"host then query":   {edit: func(c *httpapi.Config) { c.Test.URL = base + "?key={{.KeyID}}" }},
		"no auth on create": {edit: func(c *httpapi.Config) { c.Create.Headers = nil; c.Revoke.Headers = nil; c.Admin = secret.Sensitive{} }},
		"lower-case method": {edit: func(c *httpapi.Config) { c.Revoke.Method = "post" }},

		// The URL rule, with the call and the field named and the fix given.
		"admin in create path": {
			edit: func(c *httpapi.Config) { c.Create.URL = base + "/v1/{{.Admin}}/keys" },
			want: []string{"create.url: uses .Admin", "header", "body"},
		},
		"admin in revoke query": {
			edit: func(c *httpapi.Config) { c.Revoke.URL = base + "/v1/keys/{{.KeyID}}?token={{.Admin}}" },
			want: []string{"revoke.url: uses .Admin"},
		},
		"secret in test query": {
			edit: func(c *httpapi.Config) { c.Test.URL = base + "/v1/whoami?api_key={{.Secret}}" },
			want: []string{"test.url: uses .Secret", "header"},
		},
		"admin through root variable": {
			edit: func(c *httpapi.Config) { c.Create.URL = base + "/v1/keys?{{with .}}{{$.Admin}}{{end}}" },
			want: []string{"create.url: uses .Admin"},
		},
		"admin through a variable": {
			edit: func(c *httpapi.Config) { c.Create.URL = base + `/v1/keys?{{$d := .}}{{$d.Admin | printf "%s"}}` },
			want: []string{"create.url: uses .Admin"},
		},
		"secret in a defined template": {
			edit: func(c *httpapi.Config) { c.Test.URL = base + `/v1/{{define "x"}}{{.Secret}}{{end}}{{template "x" .}}` },
			want: []string{"test.url: uses .Secret"},
		},
		"secret through a chain": {
			edit: func(c *httpapi.Config) { c.Test.URL = base + `/v1/{{if true}}{{(.).Secret}}{{end}}` },
			want: []string{"test.url: uses .Secret"},
		},

		// Other URL problems.
		"templated host": {
			edit: func(c *httpapi.Config) { c.Revoke.URL = "https://{{.KeyID}}.example.com/v1/keys" },
			want: []string{"revoke.url: ", "scheme and host written out"},
		},
		"templated path right after host": {
			edit: func(c *httpapi.Config) { c.Revoke.URL = "https://api.example.com{{.KeyID}}" },
			want: []string{"revoke.url: the scheme and host must be written out"},
		},
		"relative":  {edit: func(c *httpapi.Config) { c.Create.URL = "/v1/keys" }, want: []string{"create.url: must be an absolute http:// or https:// URL"}},
		"ftp":       {edit: func(c *httpapi.Config) { c.Create.URL = "ftp://api.example.com/keys" }, want: []string{"create.url: must be an absolute"}},
		"empty url": {edit: func(c *httpapi.Config) { c.Test.URL = "" }, want: []string{"test.url: is empty"}},
		"user info": {
			edit: func(c *httpapi.Config) { c.Create.URL = "https://user:pw@api.example.com/v1/keys" },
			want: []string{"create.url: holds a user name or password"},
		},

		// Which call may use which credential.
		"test as admin": {
			edit: func(c *httpapi.Config) { c.Test.Headers["X-Admin"] = "{{.Admin}}" },
			want: []string{"test.headers.X-Admin: uses .Admin"},
		},
		"test without secret": {
			edit: func(c *httpapi.Config) { c.Test.Headers = map[string]string{"Accept": "application/json"} },
			want: []string{"test: no header or body uses {{.Secret}}"},
		},
		"secret in create body": {
			edit: func(c *httpapi.Config) { c.Create.Body = `{"old": {{json .Secret}}}` },
			want: []string{"create.body: uses .Secret, which only test has"},
		},
		"admin missing": {
			edit: func(c *httpapi.Config) { c.Admin = secret.Sensitive{} },
			want: []string{"admin: is empty, but create.headers.Authorization uses .Admin", "revoke.headers.Authorization uses .Admin"},
		},

		// Templates, headers and statuses.
		"parse error":   {edit: func(c *httpapi.Config) { c.Create.Body = "{{.SecretID" }, want: []string{"create.body"}},
		"unknown field": {edit: func(c *httpapi.Config) { c.Revoke.Headers["X-Name"] = "{{.Name}}" }, want: []string{"revoke", "Name"}},
		"unknown func":  {edit: func(c *httpapi.Config) { c.Create.Body = "{{yaml .Token}}" }, want: []string{"create.body", "yaml"}},
		"bad method":    {edit: func(c *httpapi.Config) { c.Create.Method = "FETCH" }, want: []string{`create.method: "FETCH" is not one of`}},
		"idempotency header": {
			edit: func(c *httpapi.Config) { c.Create.Headers["idempotency-key"] = "{{.Token}}" },
			want: []string{"create.headers.idempotency-key: the rotator sets Idempotency-Key itself"},
		},
		"bad header name": {edit: func(c *httpapi.Config) { c.Create.Headers["X Bad"] = "x" }, want: []string{`create.headers: "X Bad" is not a valid header name`}},
		"header twice": {
			edit: func(c *httpapi.Config) { c.Test.Headers["authorization"] = "Bearer {{.Secret}}" },
			want: []string{`test.headers: "Authorization" is set twice`},
		},
		"status range":   {edit: func(c *httpapi.Config) { c.Test.Success = []int{2000} }, want: []string{"test: status 2000 is not an HTTP status"}},
		"status both":    {edit: func(c *httpapi.Config) { c.Revoke.Success = []int{204, 404} }, want: []string{"revoke: status 404 is listed under both success and gone"}},
		"gone on create": {edit: func(c *httpapi.Config) { c.Create.Gone = []int{404} }, want: []string{"create.gone: create has no use for gone statuses"}},

		// Paths and timeout.
		"no paths": {
			edit: func(c *httpapi.Config) { c.KeyIDPath, c.KeySecretPath = "", "" },
			want: []string{"key_id: is empty", "key_secret: is empty"},
		},
		"same paths":       {edit: func(c *httpapi.Config) { c.KeySecretPath = c.KeyIDPath }, want: []string{"key_id: is the same path as key_secret"}},
		"bad path":         {edit: func(c *httpapi.Config) { c.KeyIDPath = "data..id" }, want: []string{`key_id: "data..id" has an empty member name`}},
		"negative timeout": {edit: func(c *httpapi.Config) { c.Timeout = -time.Second }, want: []string{"timeout: is negative"}},

		"every problem at once": {
			edit: func(c *httpapi.Config) {
				c.Create.URL = base + "/{{.Admin}}"
				c.Test.Method = "BREW"
				c.KeySecretPath = ""
			},
			want: []string{"create.url: uses .Admin", "test.method", "key_secret: is empty"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := validConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := httpapi.New(cfg); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), adminValue) {
				t.Error("error holds the admin credential")
			}
			if _, err := httpapi.New(cfg); !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// Validate works on a copy: the caller's config keeps its empty fields.
func TestValidateChangesNothing(t *testing.T) {
	cfg := validConfig()
	cfg.Create.Method = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Create.Method != "" || cfg.Timeout != 0 {
		t.Errorf("Validate changed the config: method %q, timeout %v", cfg.Create.Method, cfg.Timeout)
	}
}
