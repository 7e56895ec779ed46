package vaultkv

import _ "embed"

// Policy is the least-privilege Vault policy (HCL) for a Store with DefaultMount and
// DefaultStagingPrefix; the same text is in policy.hcl next to this file. Replace the
// mount name and narrow the wildcards to the paths Keyturn manages.
//
//go:embed policy.hcl
var Policy string
