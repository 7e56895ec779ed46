package vaultkv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/vaulterr"
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

// explain turns an error from the API client into a vaulterr.Error. It never includes a
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
		return &vaulterr.Error{
			Msg:   fmt.Sprintf("vault at %s did not answer in time (%s on %s): %v; the request is safe to retry", s.addr, need, path, err),
			Kinds: []error{ErrUnavailable},
			Cause: err,
		}
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return s.explainResponse(re, path, need)
	}
	if msg, ok := vaulterr.TLS(s.addr, err); ok {
		// A configuration problem, not an outage: retrying cannot fix it.
		return &vaulterr.Error{Msg: msg, Cause: err}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &vaulterr.Error{
			Msg:   fmt.Sprintf("vault at %s unreachable (%s on %s): %v; the request is safe to retry", s.addr, need, path, vaulterr.RootCause(err)),
			Kinds: []error{ErrUnavailable},
			Cause: err,
		}
	}
	return &vaulterr.Error{Msg: fmt.Sprintf("vault at %s: %s on %s: %v", s.addr, need, path, err), Cause: err}
}

func (s *Store) explainResponse(re *api.ResponseError, path string, need capability) error {
	detail := vaulterr.Detail(re)
	switch {
	case re.StatusCode == 403:
		return &vaulterr.Error{
			Msg: fmt.Sprintf("permission denied on %s at %s: the token's policy needs %s there; see the policy in the package doc (go doc github.com/keyturn/keyturn/stores/vaultkv)",
				path, s.addr, need),
			Kinds: []error{ErrPermissionDenied},
			Cause: re,
		}
	case re.StatusCode == 400 && strings.Contains(detail, "check-and-set"):
		return &vaulterr.Error{Msg: fmt.Sprintf("write %s at %s: %s", path, s.addr, errCAS), Kinds: []error{errCAS}, Cause: re}
	case re.StatusCode == 429 || re.StatusCode >= 500:
		hint := "Vault failed the request"
		if re.StatusCode == 503 {
			hint = "Vault is sealed, in standby without a leader, or overloaded"
		}
		return &vaulterr.Error{
			Msg:   fmt.Sprintf("vault at %s answered %d on %s%s: %s; the request is safe to retry", s.addr, re.StatusCode, path, detail, hint),
			Kinds: []error{ErrUnavailable},
			Cause: re,
		}
	default:
		return &vaulterr.Error{Msg: fmt.Sprintf("vault at %s answered %d on %s%s", s.addr, re.StatusCode, path, detail), Cause: re}
	}
}

func isUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
