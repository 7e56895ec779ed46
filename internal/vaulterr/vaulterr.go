// Package vaulterr holds what every Keyturn package that talks to Vault says the same
// way about a failed request: an error whose one-line message is written for the
// operator while it still unwraps to the client's error, Vault's own reason for a
// refusal, the network cause without the request URL, and the fix for a failed TLS
// handshake. Which sentinel a failure carries (retry, permission, configuration) stays
// with each package: a store and a rotator classify the same status differently.
package vaulterr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Error is a failed Vault request with a message written for the operator: what was
// asked, where, why it failed and what to do. It unwraps to the sentinels in Kinds and to
// Cause, so errors.Is finds the classification and errors.As still finds
// *api.ResponseError, while its text stays one line (the client's own text spans
// several and repeats the URL).
type Error struct {
	Msg   string
	Kinds []error
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinels, then the cause.
func (e *Error) Unwrap() []error {
	out := append([]error(nil), e.Kinds...)
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return out
}

// Reason is Vault's own reason for a refused request, and false when it gave none. A
// body Vault could not structure is left out: it may be anything a proxy in between
// returned, and Vault's structured messages never echo a request's data.
func Reason(re *api.ResponseError) (string, bool) {
	if re.RawError || len(re.Errors) == 0 {
		return "", false
	}
	return strings.Join(re.Errors, "; "), true
}

// Message is Reason, or "status N" when Vault gave none.
func Message(re *api.ResponseError) string {
	if r, ok := Reason(re); ok {
		return r
	}
	return fmt.Sprintf("status %d", re.StatusCode)
}

// Detail is Reason as a suffix for a message (": reason"), or "" when Vault gave none.
func Detail(re *api.ResponseError) string {
	if r, ok := Reason(re); ok {
		return ": " + r
	}
	return ""
}

// Response returns the *api.ResponseError in err's chain, or nil.
func Response(err error) *api.ResponseError {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re
	}
	return nil
}

// RootCause strips the URL wrapping (which repeats the full request URL) down to the
// network error, e.g. "dial tcp 127.0.0.1:8200: connect: connection refused".
func RootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// TLS recognizes a failed TLS handshake with the Vault at addr and says which setting
// fixes it. It is a configuration problem, not an outage: retrying cannot fix it.
func TLS(addr string, err error) (string, bool) {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname):
		return fmt.Sprintf("TLS verification of vault at %s failed: %v: trust its CA with VAULT_CACERT, or set VAULT_TLS_SERVER_NAME to a name in its certificate",
			addr, RootCause(err)), true
	case errors.As(err, &record):
		return fmt.Sprintf("vault at %s does not answer TLS: use http:// in VAULT_ADDR if it serves plain HTTP", addr), true
	default:
		return "", false
	}
}
