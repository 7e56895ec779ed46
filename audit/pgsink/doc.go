// Package pgsink is the production audit.Sink: the audit trail in PostgreSQL, shared by
// every worker and every `keyturn` command that writes to it.
//
// # Schema
//
// One schema (DefaultSchema unless told otherwise) holds two tables:
//
//	records      chain text, seq bigint, id text UNIQUE, time timestamptz, body text,
//	             PRIMARY KEY (chain, seq)
//	checkpoints  id bigserial PRIMARY KEY, time timestamptz, body text
//
// body is the record exactly as audit.Record.MarshalLine encodes it (without the newline),
// hash included; Records decodes it and nothing else, so audit.Verify recomputes each hash
// from what was written, and a field edited in place shows. The other columns are for
// ordering, lookup and filtering only. SchemaSQL renders the schema, triggers and grants;
// Install applies them idempotently.
//
// # Append-only
//
// A trigger refuses UPDATE, DELETE and TRUNCATE on both tables, whoever asks, and the
// writer role is granted only SELECT and INSERT (and USAGE on the checkpoint sequence), so
// a worker cannot change history even with a bug. A table's owner or a superuser can still
// disable the trigger: that is what the hash chain and the signed checkpoints detect, so
// workers must never connect as the owner.
//
// # One writer per chain, no global lock
//
// Append runs one transaction: pg_advisory_xact_lock on a 64-bit hash of the schema and
// the chain, then "is r.ID stored?", then the chain's last (seq, hash), then the insert of
// the record sealed at seq+1. The lock serialises appends to one chain across every
// process and is released by commit or rollback (a killed writer's connection drop
// included), and appends to different chains never wait for each other. Two chains whose
// names hash alike only share a lock, which costs some waiting and nothing else. The
// primary key and UNIQUE(id) are the backstop for a writer that bypassed the lock: a
// unique violation is answered by reading the stored record (a duplicate event) or by
// trying again (a taken position). Serialization failures and deadlocks are retried a few
// times.
//
// # Secrets
//
// The connection string may hold a password. No error of this package repeats it: errors
// say the operation, and a connection failure is rebuilt without the driver's connection
// config.
package pgsink
