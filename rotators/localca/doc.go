// Package localca rotates a TLS certificate signed by a local CA whose certificate and
// key Keyturn keeps in its own store. It is the default certificate kind of `keyturn
// dev`, which makes the CA with NewCA and stores it, so a developer gets real, verifiable
// certificates and a real CRL with no Vault and no network.
//
// It is a rotators.Minter (the CA signs; Keyturn makes the key), a rotators.Renewer (a
// certificate is due once Request.RenewAt of its lifetime has passed, two thirds by
// default) and a rotators.Sweeper (the issuance log names what a Mint signed).
//
// # Steps
//
// Mint first adds to the CRL the certificates an interrupted Mint of the same version
// signed but never stored: the serials the issuance log records for MintRequest.Token
// that no MintRequest.Known version holds, and those MintRequest.Abandoned names. It
// then records a new serial in the log, synced to disk, and only then makes a key
// (ECDSA P-256, or RSA) and signs a leaf with the CA: that random 128-bit serial, the
// request's common name and SANs (the common name included), server and client
// authentication, valid from 30
// seconds ago for the TTL but never past the CA's own expiry. The metadata reaches
// MintRequest.Minted before Mint returns. The material is certificate, private_key and
// ca_chain (the CA certificate); see package certs.
//
// Sweep runs Mint's first step alone, under the same lock: the rollback of a Create that
// gave up after the CA signed calls it, and it returns the serials it put on the CRL.
//
// Apply does nothing: a signed certificate is valid from the start, and a revoked one
// stays on the CRL.
//
// Test checks that the material is the certificate the version recorded (its serial),
// that the CRL file does not list it, and then runs certs.Check with the CA as the only
// trust root: key, validity, chain, names, lifetime and a real TLS handshake on
// 127.0.0.1.
//
// Revoke adds the version's serial to the CRL, unless it is the serial of
// RevokeRequest.Keep. Revoking a serial already listed changes nothing.
//
// # The CRL file
//
// Config.CRLFile holds the CRL as PEM ("X509 CRL"), signed by the CA; it is created by
// the first revocation, with its directory. Every change takes an exclusive flock on
// CRLFile+".lock" (several workers and processes may share the file), reads and verifies
// the current CRL, appends the new serials, raises the CRL number by one, signs again and
// replaces the file through a temporary file and a rename, so readers never see half a
// CRL and need no lock. The CRL's nextUpdate is the CA's expiry, since it is only signed
// again when something is revoked. A CRL file signed by another CA is refused
// (rotators.ErrInvalidConfig): each CA needs a file of its own. Entries are never
// removed, which at one entry per rotation keeps the file small for the life of a
// development CA.
//
// # The issuance log
//
// CRLFile+".issued" holds one JSON line per serial the CA reserved: the serial, the
// version token that asked for it, the time. It is appended under the CRL's lock and
// synced before the certificate is signed, so a worker killed at any instant cannot leave
// a signed certificate the log does not name; a retry of the same version finds it there
// and revokes it, whether or not a heartbeat carried the serial. A torn last line (a
// write a crash cut short) is skipped, and the next record starts on a new line.
//
// # The CA
//
// The CA certificate must be a CA (basic constraints), allowed to sign certificates and
// CRLs, with a subject key identifier, not expired, and the key must be its key; New
// checks all of it and reports every problem at once, wrapping rotators.ErrInvalidConfig.
// The key lives in memory only for the life of the Rotator; Keyturn's store holds it at
// rest.
//
// # No usage check
//
// The Rotator is not a rotators.UsageReporter: the CA cannot see where a certificate is
// presented, so the revoke gate relies on the grace period alone (see rotators/certs).
package localca
