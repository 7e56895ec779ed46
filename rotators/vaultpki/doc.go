// Package vaultpki rotates a TLS certificate signed by a HashiCorp Vault PKI secrets
// engine, through Vault's MPL-licensed API client.
//
// It is a rotators.Minter (Vault signs; Keyturn makes the key), a rotators.Renewer (a
// certificate is due once Request.RenewAt of its lifetime has passed, two thirds by
// default) and a rotators.Sweeper (the mount's certificate list shows what a Mint
// signed).
//
// # Steps
//
// Mint first revokes the certificates an interrupted Mint of the same version signed but
// never stored: those MintRequest.Abandoned names, and those Vault itself lists (LIST
// <mount>/certs, then <mount>/cert/<serial> for each serial not read before) with the
// request's common name and DNS names, not revoked, held by no MintRequest.Known version,
// and with a NotBefore no earlier than MintRequest.Since less 35 seconds (Vault's default
// 30-second backdating and 5 seconds of clock skew). It then makes a private key on the
// worker (ECDSA P-256, or RSA), writes a CSR for the request's names, and asks Vault to
// sign it:
//
//	POST <mount>/sign/<role>  csr, common_name, alt_names, ip_sans, ttl
//
// The key never goes to Vault, which is why the path is sign and not issue. The new
// certificate's metadata (serial, not_before, not_after, common_name) reaches
// MintRequest.Minted before Mint returns, as a hint for a retry. The material is certificate, private_key and ca_chain (see package certs).
//
// Sweep runs Mint's first step alone: the rollback of a Create that gave up after Vault
// signed calls it with the time the Create began, and it returns the serials it revoked.
//
// Apply does nothing: a signed certificate is valid from the moment Vault signs it, and
// a revoked one cannot be un-revoked, so there is nothing to turn on or restore.
//
// Test checks that the material is the certificate the version recorded (its serial),
// that Vault has not revoked it (GET <mount>/cert/<serial>, revocation_time 0), and then
// runs certs.Check with the CA as the only trust root: key, validity, chain, names,
// lifetime and a real TLS handshake on 127.0.0.1.
//
// Revoke revokes the version's serial (POST <mount>/revoke serial_number) and then reads
// the mount's CRL (<mount>/crl, DER) until it lists the serial, forcing a rebuild with
// <mount>/crl/rotate when it does not yet (a mount with auto_rebuild rebuilds lazily).
// A serial already revoked is checked the same way; one that has expired (Vault refuses
// to list it, with a warning) or that Vault does not know is success. It never revokes
// the certificate of RevokeRequest.Keep.
//
// # The role
//
// The role must allow the request's names (allowed_domains, allow_subdomains,
// allow_ip_sans), accept the CSR's key (key_type "any", or the one asked for: Vault's
// default role key_type is "rsa", which refuses an EC CSR) and keep what it signs
// (no_store false, the default): Vault can only revoke a certificate it stored, and Test
// refuses a certificate Vault has no record of. A ttl above the role's max_ttl is
// shortened by Vault with a warning; Due then follows the real lifetime.
//
// # Least privilege
//
// The token needs the policy in policy.hcl (Policy, or PolicyFor for other names):
// update on <mount>/sign/<role> and <mount>/revoke, list on <mount>/certs, and read on
// <mount>/crl/rotate (a GET in Vault). <mount>/cert/*, <mount>/crl and <mount>/ca/pem are served without a
// token; the policy lists them as read anyway.
//
// # Errors
//
// A 403 wraps rotators.ErrPermissionDenied and names the path and the capability. A 400
// on sign (unknown role, a name or key the role does not allow) and a mount that does not
// exist wrap rotators.ErrInvalidConfig with the fix. A revoked certificate, or material
// that is not the version's certificate, wraps rotators.ErrCredentialRejected in Test.
// Anything else (Vault unreachable, sealed, a CRL that does not list a revoked serial
// yet) is returned plain, for the workflow to retry.
//
// # No usage check
//
// The Rotator is not a rotators.UsageReporter: Vault's PKI engine cannot see where a
// certificate is presented, so the revoke gate relies on the grace period alone (see
// rotators/certs).
package vaultpki
