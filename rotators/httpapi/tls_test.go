package httpapi_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
)

// TestPrivateCA rotates a key of an API served over TLS with a certificate no system
// root trusts: without a CA bundle the first call fails with an error that says the
// certificate is not trusted and what to set; with the bundle every call works, Test
// included.
func TestPrivateCA(t *testing.T) {
	s := apitest.StartTLS(t)

	plain := mustNew(t, exampleConfig(s))
	_, _, err := mint(t, plain, "tok-1")
	if err == nil || !strings.Contains(err.Error(), "certificate is not trusted") || !strings.Contains(err.Error(), "httpapi.ca_file") {
		t.Fatalf("Mint without a CA bundle = %v, want an untrusted-certificate error naming httpapi.ca_file", err)
	}
	if s.Created() != 0 {
		t.Fatalf("a call without a trusted certificate reached the API")
	}

	cfg := exampleConfig(s)
	cfg.CABundle = s.CAPEM()
	r := mustNew(t, cfg)
	v, m, _ := mustMint(t, r, "tok-2")
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: m}); err != nil {
		t.Fatalf("Test with the CA bundle: %v", err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil || s.Live(keyOf(v)) {
		t.Fatalf("Revoke with the CA bundle = %v, live %v", err, s.Live(keyOf(v)))
	}
}

func TestParseCABundle(t *testing.T) {
	s := apitest.StartTLS(t)
	good := s.CAPEM()
	tests := map[string]struct {
		pem  string
		want string // fragment of the error; "" for success
	}{
		"one certificate":           {string(good), ""},
		"text around it":            {"# our CA\n" + string(good) + "\n", ""},
		"empty":                     {"", "holds no PEM certificate"},
		"not PEM":                   {"hello\n", "holds no PEM certificate"},
		"a key only":                {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no PEM certificate"},
		"broken second certificate": {string(good) + "\n\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "at line "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := httpapi.ParseCABundle([]byte(tc.pem))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseCABundle: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ParseCABundle = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// The line of a broken certificate is the line of its BEGIN.
	lines := strings.Count(string(good), "\n")
	_, err := httpapi.ParseCABundle([]byte(string(good) + "\n\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if want := "at line " + strconv.Itoa(lines+3); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseCABundle = %v, want %q", err, want)
	}

	cfg := exampleConfig(s)
	cfg.CABundle = []byte("not a certificate")
	if _, err := httpapi.New(cfg); !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("New with a bad bundle = %v, want ErrInvalidConfig about ca_file", err)
	}
}
