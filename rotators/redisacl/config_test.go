package redisacl

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/rotators"
)

func TestValidate(t *testing.T) {
	good := Config{Nodes: []string{"127.0.0.1:6379", "localhost"}, User: "app", AdminUser: "keyturn"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no nodes", func(c *Config) { c.Nodes = nil }, "no nodes"},
		{"bad port", func(c *Config) { c.Nodes = []string{"127.0.0.1:99999"} }, "port"},
		{"twice", func(c *Config) { c.Nodes = []string{"localhost", "localhost:6379"} }, "listed twice"},
		{"plaintext", func(c *Config) { c.Nodes = []string{"redis.internal:6379"} }, "TLS is off"},
		{"no user", func(c *Config) { c.User = "" }, "user: is empty"},
		{"user with space", func(c *Config) { c.User = "a b" }, "space"},
		{"admin is user", func(c *Config) { c.AdminUser = "app" }, "must not be the managed user"},
		{"empty check word", func(c *Config) { c.Check = []string{"GET", ""} }, "check word 2"},
	} {
		cfg := good
		cfg.Nodes = append([]string(nil), good.Nodes...)
		c.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want one saying %q", c.name, err, c.want)
		}
	}
	tls := good
	tls.Nodes, tls.TLS = []string{"redis.internal:6380"}, true
	if err := tls.Validate(); err != nil {
		t.Errorf("a remote node over TLS: %v", err)
	}
	allowed := good
	allowed.Nodes, allowed.AllowPlaintext = []string{"redis.internal"}, true
	if err := allowed.Validate(); err != nil {
		t.Errorf("a remote node with allow_plaintext: %v", err)
	}
}

func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{"h": "h:6379", "h:1": "h:1", "::1": "[::1]:6379", "[::1]:7000": "[::1]:7000"} {
		if got := WithPort(in); got != want {
			t.Errorf("WithPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPasswordID(t *testing.T) {
	// printf %s secret | sha256sum
	if got := PasswordID("secret"); got != "2bb80d537b1da3e3" {
		t.Errorf("PasswordID = %q", got)
	}
}
