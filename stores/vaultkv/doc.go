// Package vaultkv is the HashiCorp Vault KV version 2 store: it keeps the pending,
// current and previous versions of each secret so that consumers reading the secret's
// path in Vault only ever see the current one.
//
// # Layout
//
// For a secret whose consumer path is P (its ID, unless Config.Paths says otherwise),
// under the mount M (default "secret") and the staging prefix S (default
// "keyturn-pending"):
//
//   - M/data/P, the consumer path, holds exactly the current version: its material
//     fields plus its non-secret metadata fields (a user name), nothing else. For a
//     database secret that is AWS's documented structure for database credentials
//     (engine, host, port, dbname, username, password, from rotators/postgres), with
//     "port" written as a JSON number (stores.ConsumerMetadataValue); the ledger keeps
//     it as text. Each promotion writes one new KV version with check-and-set, so two
//     writers can never interleave.
//   - M/metadata/P custom metadata is the ledger: "keyturn.v<N>" says which Keyturn
//     version (token, number, creation time, metadata) KV version N holds, as compact
//     JSON. Current is the KV current_version, previous the KV version before it;
//     entries older than previous are pruned. It is only ever changed by JSON merge
//     patch, one key per KV version, so writers of different keys never undo each other.
//   - M/data/S/P, the staging path, holds the pending version (material and record)
//     and, while a promotion is under way, its claim. Vault keeps one version of it
//     (max_versions = 1). Its KV version number, bumped by every change and never
//     reused, numbers new Keyturn versions.
//
// Custom metadata has no check-and-set, so everything that racing writers could write
// differently sits behind a check-and-set write to the staging path instead; the ledger
// only ever receives entries every writer agrees on.
//
// # Operations
//
//   - StagePending writes the pending version to the staging path (check-and-set),
//     superseding any other pending one. The consumer path is untouched.
//   - Promote claims the promotion in the staging document ("write version T to the
//     consumer path as KV version C+1"), writes the data with cas = C (0 when the secret
//     has no current yet), records C+1 in the ledger and clears the claim. A crash at any
//     point leaves a claim that the next call of any method finishes. A rollback
//     (promoting previous) copies KV version C-1 to C+1: a new KV version whose token is
//     the previous token again.
//   - DiscardPending clears the pending version from the staging document; it refuses
//     current and previous with stores.ErrNotPending.
//
// A lost check-and-set makes a call read again and decide anew, so a racing Promote of
// the same version finds it current and returns nil, and a superseded pending version is
// not found. A promotion whose consumer write lost to a writer outside Keyturn is
// withdrawn with stores.ErrConflict. KV versions written outside Keyturn are not listed.
// Previous is read from the consumer path's history, so the mount must keep at least two
// versions (max_versions 0, Vault's default of 10, or 2 and more).
//
// Material is written to Vault only as KV data fields, never logged and never put in an
// error.
//
// # Policy
//
// The worker's token needs this policy (also in policy.hcl, and as Policy), with the
// mount and wildcards adapted. Consumers' policies must not grant read on the staging
// prefix: an application reads with ReadCurrent, which needs read on M/data/P and
// M/metadata/P only (Read needs the staging document too):
//
//	path "secret/data/*"                     { capabilities = ["create", "read", "update"] }
//	path "secret/metadata/*"                 { capabilities = ["read", "patch"] }
//	path "secret/data/keyturn-pending/*"     { capabilities = ["create", "read", "update"] }
//	path "secret/metadata/keyturn-pending/*" { capabilities = ["create", "update"] }
//
// The tests run the store's conformance suite with a token holding this policy and
// nothing else, not even Vault's default policy, and take out each capability in turn:
// all are needed but create on the staging data path, kept for the reason policy.hcl
// gives (docs/least-privilege.md). Keep the default policy attached anyway: without it a
// token given to the store is never renewed.
//
// # Authentication
//
// New logs in with a token, AppRole, JWT or Kubernetes auth (Config.Auth, or
// ConfigFromEnv) and keeps the token alive with Vault's lifetime watcher; when it can no
// longer be renewed, the login methods log in again. Close stops that.
//
// Errors name the Vault address and path and say what to fix. Requests Vault refused
// for policy reasons match ErrPermissionDenied; an unreachable, sealed or failing Vault
// matches ErrUnavailable, which is safe to retry.
package vaultkv
