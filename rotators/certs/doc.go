// Package certs holds what the certificate kinds (rotators/vaultpki, rotators/localca)
// share and that does not depend on who signs: the Request an inventory entry describes,
// the local key and CSR, the material and metadata layout, the checks a new certificate
// must pass before consumers get it, and the renewal clock.
//
// The private key is always made here, on the worker, so it never travels to a signer:
// a CA sees a CSR or a public key, nothing else.
//
// # Material and metadata
//
// Both kinds return the same material fields:
//
//	certificate   the leaf certificate, PEM
//	private_key   its key, PKCS#8 PEM (the only secret field)
//	ca_chain      the issuing CA and any intermediates above it, PEM
//
// and the same metadata, which is safe to show anywhere:
//
//	serial        the serial number, lower-case hex bytes joined by ':' as Vault prints it
//	not_before    the start of validity, RFC 3339, UTC
//	not_after     the end of validity, RFC 3339, UTC
//	common_name   the subject common name
//
// # Checks
//
// Check runs, in order, and stops at the first failure: the key matches the certificate,
// the validity window is sane, the chain verifies to the trusted CA pool alone, the names
// are exactly the ones asked for, the lifetime is no longer than asked, and a real TLS
// handshake on 127.0.0.1 succeeds. A certificate that does not work wraps
// rotators.ErrCredentialRejected; one that works but is not what the inventory describes
// (other names, a longer life, no server authentication) wraps rotators.ErrCheckFailed,
// since no retry changes what the signer's policy produced.
//
// # Renewal
//
// Due says a version should be replaced once RenewAt (by default two thirds) of its
// lifetime has passed, read from its metadata alone, so the schedules can decide without
// touching the material.
//
// # No usage check
//
// Neither certificate kind (localca, vaultpki) is a rotators.UsageReporter: a CA learns
// nothing of where a certificate is presented, so the revoke gate cannot ask whether an
// old certificate is still in use, and its revoke waits for the grace period alone.
package certs
