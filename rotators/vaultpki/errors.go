package vaultpki

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/vaulterr"
	"github.com/keyturn/keyturn/rotators"
)

// capability names what a request needs in policy terms, for the permission message.
type capability string

const (
	capRead   capability = "read"
	capUpdate capability = "update"
	capList   capability = "list"
)

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
		return &vaulterr.Error{Msg: fmt.Sprintf("%s (%s at %s): %v", op, path, r.addr, vaulterr.RootCause(err)), Cause: err}
	}
	detail := vaulterr.Message(re)
	switch {
	case re.StatusCode == 403:
		return &vaulterr.Error{
			Msg: fmt.Sprintf("%s: permission denied: the token may not %s %s at %s; grant the policy in rotators/vaultpki/policy.hcl (go doc github.com/keyturn/keyturn/rotators/vaultpki)",
				op, need, path, r.addr),
			Kinds: []error{rotators.ErrPermissionDenied},
			Cause: re,
		}
	case re.StatusCode == 404 && strings.Contains(detail, "no handler for route"):
		return &vaulterr.Error{
			Msg: fmt.Sprintf("%s: invalid configuration: no PKI engine answers %s at %s: check mount %q (vault secrets list)",
				op, path, r.addr, r.cfg.Mount),
			Kinds: []error{rotators.ErrInvalidConfig},
			Cause: re,
		}
	case re.StatusCode == 400:
		if fix == "" {
			fix = "fix the PKI role or the inventory entry"
		}
		return &vaulterr.Error{
			Msg:   fmt.Sprintf("%s: invalid configuration: Vault at %s refused %s: %s: %s", op, r.addr, path, detail, fix),
			Kinds: []error{rotators.ErrInvalidConfig},
			Cause: re,
		}
	default:
		return &vaulterr.Error{
			Msg:   fmt.Sprintf("%s (%s at %s): Vault answered %d: %s; the request is safe to retry", op, path, r.addr, re.StatusCode, detail),
			Cause: re,
		}
	}
}

// signFix says how to fix a refused sign request, from Vault's reason.
func (r *Rotator) signFix(re *api.ResponseError) string {
	msg := vaulterr.Message(re)
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

// responseError returns the *api.ResponseError in err's chain with the given status, or nil.
func responseError(err error, status int) *api.ResponseError {
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == status {
		return re
	}
	return nil
}
