// Package consumer is for applications that use secrets Keyturn rotates: it reads the
// current version of a secret from the store Keyturn writes to and caches it, so that an
// application picks up a new version well before the old one is revoked.
//
// Two parts, one concern each:
//
//   - A Source reads the current version of a secret. OpenFile (the dev file store),
//     OpenVault (Vault KV v2) and OpenAWS (AWS Secrets Manager) wrap the stores' own
//     read paths, so a consumer reads a version exactly as the rotation engine wrote it;
//     FromStore wraps a store you built yourself.
//   - A Cache serves values from a Source: each is read again after a TTL varied by a
//     jitter (±10% by default) so a fleet does not read in lockstep; concurrent Gets of
//     one secret share one read; Invalidate forces the next Get to read (call it when
//     the credential is refused); and when the store cannot be read, the last good
//     value is served while it is younger than MaxStale, reported through OnStale, after
//     which Get returns an error naming the secret.
//
// Use:
//
//	src, err := consumer.OpenAWS(awsCfg, "keyturn/")
//	cache, err := consumer.New(src, consumer.Options{TTL: time.Minute, OnStale: report})
//	...
//	v, err := cache.Get(ctx, "prod/orders-db/app")
//	password := v.Field("password").Reveal()
//
// Hooks for clients read through a Cache and refresh on an authentication failure:
//
//   - consumer/pgxconsumer logs pgx and pgxpool connections in with the current password
//     (and user: the alternating strategy's twin role) and, when PostgreSQL refuses it
//     with 28P01, invalidates the secret and connects once more with a fresh read.
//   - consumer/mysqlconsumer is a database/sql connector (go-sql-driver/mysql) that logs
//     connections in to MariaDB with the current account (kind mariadb: the twin
//     changes with the version) and retries once with a fresh read when the login is
//     refused or the account is locked.
//   - consumer/redisconsumer logs go-redis clients in with the current ACL user and
//     password (kind redis) and, when Redis refuses the login (WRONGPASS), invalidates
//     the secret and runs the command once more with a fresh read.
//   - NewAWSCredentials is an aws.CredentialsProvider for a rotated IAM access key; its
//     credentials expire when the Cache would read again, so aws.CredentialsCache follows
//     the Cache.
//   - NewTLSCertificates serves a rotated certificate (fields certificate, private_key,
//     ca_chain) to crypto/tls: GetCertificate for a server, GetClientCertificate for a
//     client in mutual TLS. Each version is parsed once; the next handshake after the
//     Cache reads a new version presents it. Connections already established keep the
//     certificate they began with. The old certificate stays valid until it expires:
//     the rotation lists it in the CA's CRL, but only peers that check the CRL refuse
//     it (Go's crypto/tls does not), so keep certificate lifetimes short. When the
//     store cannot be read past the Cache's MaxStale, the last good certificate is
//     served until it expires, and OnError says so.
//
// Read through the cache every time the credential is used to open something new (a
// connection, a client); do not copy the value into a long-lived variable at start-up,
// which is exactly the consumer that breaks at the first revoke.
//
// # TTL and the rotation grace period
//
// After Keyturn promotes a new version, the old credential keeps working for the
// secret's grace period and is then revoked. A consumer is safe when everything it holds
// has moved to the new version within that window:
//
//   - TTL (plus its jitter) must be shorter than the grace period, with a margin for a
//     failed read or two: with a 1h grace, a TTL of a few minutes.
//   - Connections opened with the old credential outlive a cache refresh. A pool's
//     maximum connection lifetime (pgxpool's MaxConnLifetime, database/sql's
//     SetConnMaxLifetime) must also be shorter than the grace period, or the pool keeps
//     old-credential connections past the revoke.
//   - MaxStale should be longer than TTL (else stale-on-error never applies) and shorter
//     than the grace period: a value older than that may already be revoked, and an
//     error is more honest than a credential that cannot work.
//
// # Secrets never leak through this package
//
// Material is held as secret.Sensitive, which prints [REDACTED] and refuses to marshal;
// call Reveal only where the value is handed over. Errors and callbacks name the secret
// and never carry material.
//
// # Access each store needs
//
// A consumer only reads, and needs read access only:
//
//   - File store: read on the store directory, its secrets/ and its store.key (mode 0600
//     or stricter, so the consumer runs as the store's owner). OpenFile opens the store
//     read-only: it creates no lock file, tidies and upgrades nothing, and refuses a
//     store from before format 2 with the command that upgrades it.
//   - AWS Secrets Manager: secretsmanager:GetSecretValue on the secret (only AWSCURRENT
//     is read).
//   - Vault: read on <mount>/data/<path> and <mount>/metadata/<path> (the version
//     ledger), and nothing on the staging prefix (keyturn-pending by default), where
//     pending material lives: OpenVault reads through vaultkv.Store.ReadCurrent, which
//     never reads there. For the few milliseconds a promotion spends between writing the
//     new version and recording it in the ledger (longer if a worker crashes right
//     there, until it retries), a consumer still reads the version before, which keeps
//     working until the promotion is done and the grace period has passed.
//
// A consumer's Vault policy for the secrets under prod/ on the mount "secret":
//
//	path "secret/data/prod/*"     { capabilities = ["read"] }
//	path "secret/metadata/prod/*" { capabilities = ["read"] }
package consumer
