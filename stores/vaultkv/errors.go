package vaultkv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/stores"
)

// Errors this package adds to those of the stores package. Match them with errors.Is.
var (
	// ErrPermissionDenied: the token's policy does not allow a request the store needs.
	// Retrying cannot help; grant the policy in the package doc.
	ErrPermissionDenied = fmt.Errorf("vault: %w", stores.ErrPermissionDenied)
	// ErrUnavailable: Vault could not be reached, is sealed, or failed the request on its
	// side. The store changed nothing it cannot finish later; retry.
	ErrUnavailable = errors.New("vault unavailable")
)

// errCAS is an internal marker for a check-and-set write that lost: another writer got
// there first. Callers re-read and decide; it never leaves the package unwrapped.
var errCAS = errors.New("check-and-set lost")

// capability names what a request needs in policy terms, for the permission message.
type capability string

const (
	capRead   capability = "read"
	capWrite  capability = "create and update"
	capPatch  capability = "patch"
	capUpdate capability = "update"
)

// vaultError is an error from a Vault request with a message written for the operator:
// the path and the address, what went wrong, what to do. It unwraps to the package's
// sentinels and to the original error, so errors.As still finds *api.ResponseError.
type vaultError struct {
	msg   string
	kinds []error
	cause error
}

func (e *vaultError) Error() string { return e.msg }

func (e *vaultError) Unwrap() []error {
	out := append([]error(nil), e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// explain turns an error from the API client into a vaultError. It never includes a
// response body Vault could not structure, and Vault's own messages never echo the data
// of a request, so material cannot ride along.
func (s *Store) explain(err error, path string, need capability) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The client's own timeout (Config.Timeout) or the caller's deadline: either way
		// Vault did not answer in time, which a later attempt may change.
		return &vaultError{
			msg:   fmt.Sprintf("vault at %s did not answer in time (%s on %s): %v; the request is safe to retry", s.addr, need, path, err),
			kinds: []error{ErrUnavailable},
			cause: err,
		}
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return s.explainResponse(re, path, need)
	}
	if msg, ok := s.explainTLS(err); ok {
		// A configuration problem, not an outage: retrying cannot fix it.
		return &vaultError{msg: msg, cause: err}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &vaultError{
			msg:   fmt.Sprintf("vault at %s unreachable (%s on %s): %v; the request is safe to retry", s.addr, need, path, rootCause(err)),
			kinds: []error{ErrUnavailable},
			cause: err,
		}
	}
	return &vaultError{msg: fmt.Sprintf("vault at %s: %s on %s: %v", s.addr, need, path, err), cause: err}
}

func (s *Store) explainResponse(re *api.ResponseError, path string, need capability) error {
	detail := ""
	if !re.RawError && len(re.Errors) > 0 {
		detail = ": " + strings.Join(re.Errors, "; ")
	}
	switch {
	case re.StatusCode == 403:
		return &vaultError{
			msg: fmt.Sprintf("permission denied on %s at %s: the token's policy needs %s there; see the policy in the package doc (go doc github.com/keyturn/keyturn/stores/vaultkv)",
				path, s.addr, need),
			kinds: []error{ErrPermissionDenied},
			cause: re,
		}
	case re.StatusCode == 400 && strings.Contains(detail, "check-and-set"):
		return &vaultError{msg: fmt.Sprintf("write %s at %s: %s", path, s.addr, errCAS), kinds: []error{errCAS}, cause: re}
	case re.StatusCode == 429 || re.StatusCode >= 500:
		hint := "Vault failed the request"
		if re.StatusCode == 503 {
			hint = "Vault is sealed, in standby without a leader, or overloaded"
		}
		return &vaultError{
			msg:   fmt.Sprintf("vault at %s answered %d on %s%s: %s; the request is safe to retry", s.addr, re.StatusCode, path, detail, hint),
			kinds: []error{ErrUnavailable},
			cause: re,
		}
	default:
		return &vaultError{msg: fmt.Sprintf("vault at %s answered %d on %s%s", s.addr, re.StatusCode, path, detail), cause: re}
	}
}

// explainTLS recognizes a failed TLS handshake and says which setting fixes it.
func (s *Store) explainTLS(err error) (string, bool) {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname):
		return fmt.Sprintf("TLS verification of vault at %s failed: %v: trust its CA with VAULT_CACERT, or set VAULT_TLS_SERVER_NAME to a name in its certificate",
			s.addr, rootCause(err)), true
	case errors.As(err, &record):
		return fmt.Sprintf("vault at %s does not answer TLS: use http:// in VAULT_ADDR if it serves plain HTTP", s.addr), true
	default:
		return "", false
	}
}

// rootCause strips the URL wrapping (which repeats the full request URL) down to the
// network error, e.g. "dial tcp 127.0.0.1:8200: connect: connection refused".
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

func isUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
