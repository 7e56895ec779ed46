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
//   - NewAWSCredentials is an aws.CredentialsProvider for a rotated IAM access key; its
//     credentials expire when the Cache would read again, so aws.CredentialsCache follows
//     the Cache.
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
//   - File store: read access to the store directory and its store.key.
//   - AWS Secrets Manager: secretsmanager:GetSecretValue on the secret (only AWSCURRENT
//     is read).
//   - Vault: read on <mount>/data/<path> and <mount>/metadata/<path> (the version
//     ledger), and read on <mount>/data/<staging-prefix>/<path>: the store's read path
//     consults the staging document so that a promotion caught half way reads as done.
package consumer
