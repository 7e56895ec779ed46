package vaultpki

import (
	_ "embed"
	"strings"
)

// Policy is the least-privilege Vault policy (HCL) for a Rotator with mount "pki" and
// role "keyturn"; the same text is in policy.hcl next to this file. PolicyFor fills in
// other names.
//
//go:embed policy.hcl
var Policy string

// PolicyFor returns Policy for the given mount and role, for an operator to install with
// `vault policy write`.
func PolicyFor(mount, role string) string {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	p := strings.ReplaceAll(Policy, `path "pki/sign/keyturn"`, `path "pki/sign/`+role+`"`)
	return strings.ReplaceAll(p, `path "pki/`, `path "`+mount+`/`)
}
