package vaultpki

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/rotators"
)

// capability names what a request needs in policy terms, for the permission message.
type capability string

const (
	capRead   capability = "read"
	capUpdate capability = "update"
	capList   capability = "list"
)

// vaultError is a failed Vault request with a message written for the operator: what
// was asked, where, why it failed and what to do. It unwraps to the rotators sentinel
// that classifies it and to the API client's error, so errors.As still finds
// *api.ResponseError, while its text stays one line (the client's own text spans
// several and repeats the URL).
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

// explain turns an error from the API client into one that says what to do: a 403 wraps
// rotators.ErrPermissionDenied and names the capability; a 400 or a missing route wraps
// rotators.ErrInvalidConfig with Vault's reason and the fix; anything else (unreachable,
// sealed, 5xx) carries no sentinel, so the workflow retries it. Vault's messages may
// quote names and serials, which are public; the private key never reaches Vault.
func (r *Rotator) explain(err error, op, path string, need capability, fix string) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &re) {
		return &vaultError{msg: fmt.Sprintf("%s (%s at %s): %v", op, path, r.addr, rootCause(err)), cause: err}
	}
	detail := vaultMessage(re)
	switch {
	case re.StatusCode == 403:
		return &vaultError{
			msg: fmt.Sprintf("%s: permission denied: the token may not %s %s at %s; grant the policy in rotators/vaultpki/policy.hcl (go doc github.com/keyturn/keyturn/rotators/vaultpki)",
				op, need, path, r.addr),
			kinds: []error{rotators.ErrPermissionDenied},
			cause: re,
		}
	case re.StatusCode == 404 && strings.Contains(detail, "no handler for route"):
		return &vaultError{
			msg: fmt.Sprintf("%s: invalid configuration: no PKI engine answers %s at %s: check mount %q (vault secrets list)",
				op, path, r.addr, r.cfg.Mount),
			kinds: []error{rotators.ErrInvalidConfig},
			cause: re,
		}
	case re.StatusCode == 400:
		if fix == "" {
			fix = "fix the PKI role or the inventory entry"
		}
		return &vaultError{
			msg:   fmt.Sprintf("%s: invalid configuration: Vault at %s refused %s: %s: %s", op, r.addr, path, detail, fix),
			kinds: []error{rotators.ErrInvalidConfig},
			cause: re,
		}
	default:
		return &vaultError{
			msg:   fmt.Sprintf("%s (%s at %s): Vault answered %d: %s; the request is safe to retry", op, path, r.addr, re.StatusCode, detail),
			cause: re,
		}
	}
}

// rootCause strips the URL wrapping (which repeats the request URL) down to the network
// error, e.g. "dial tcp 127.0.0.1:8200: connect: connection refused".
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// signFix says how to fix a refused sign request, from Vault's reason.
func (r *Rotator) signFix(re *api.ResponseError) string {
	msg := vaultMessage(re)
	switch {
	case strings.Contains(msg, "unknown role"):
		return fmt.Sprintf("create the role (vault write %s/roles/%s ...) or fix role in the inventory", r.cfg.Mount, r.cfg.Role)
	case strings.Contains(msg, "not allowed by this role"), strings.Contains(msg, "IP Subject Alternative Names are not allowed"):
		return fmt.Sprintf("allow the names in role %s (allowed_domains, allow_subdomains, allow_ip_sans) or change common_name, alt_names and ip_sans", r.cfg.Role)
	case strings.Contains(msg, "keys of type"), strings.Contains(msg, "key type"), strings.Contains(msg, "key bits"), strings.Contains(msg, "key size"):
		return fmt.Sprintf("set key_type \"any\" on role %s, or make key_type and key_bits match the role", r.cfg.Role)
	case strings.Contains(msg, "NotAfter"), strings.Contains(msg, "not_after"):
		return "lower ttl below the issuer's remaining validity, or set the role's not_after behaviour to truncate"
	}
	return ""
}

// vaultMessage is Vault's reason for a failed request. A body Vault could not structure
// is left out: it may be anything a proxy in between returned.
func vaultMessage(re *api.ResponseError) string {
	if re.RawError || len(re.Errors) == 0 {
		return fmt.Sprintf("status %d", re.StatusCode)
	}
	return strings.Join(re.Errors, "; ")
}

// responseError returns the *api.ResponseError in err's chain with the given status, or nil.
func responseError(err error, status int) *api.ResponseError {
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == status {
		return re
	}
	return nil
}
