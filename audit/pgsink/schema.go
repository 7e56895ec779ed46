package pgsink

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultSchema is the schema the sink uses when none is given.
const DefaultSchema = "keyturn_audit"

// DefaultWriterRole is the role name the documentation's rendering of the schema grants
// to. Any existing role will do.
const DefaultWriterRole = "keyturn_audit_writer"

// schemaTemplate is the whole schema. {{S}} is the quoted schema, {{W}} the quoted writer
// role, {{LOCK}} the install lock's key. It runs in one transaction and every statement
// is idempotent, so applying it again (a second worker starting, an upgrade) changes
// nothing and converges the grants back to least privilege.
const schemaTemplate = `-- Keyturn audit trail, PostgreSQL sink, record format 1.
-- Apply as the role that will own the tables (not as the workers' role).
BEGIN;
-- Concurrent installs wait for each other instead of racing on the catalogs.
SELECT pg_advisory_xact_lock({{LOCK}});

CREATE SCHEMA IF NOT EXISTS {{S}};

-- body is the record exactly as written (audit.Record.MarshalLine without the newline);
-- verification recomputes each hash from it. chain, seq, id and time order, find and
-- filter records.
CREATE TABLE IF NOT EXISTS {{S}}.records (
    chain text        NOT NULL,
    seq   bigint      NOT NULL,
    id    text        NOT NULL UNIQUE,
    time  timestamptz NOT NULL,
    body  text        NOT NULL,
    PRIMARY KEY (chain, seq)
);
COMMENT ON TABLE {{S}}.records IS 'Keyturn audit records, format 1; append-only';

CREATE TABLE IF NOT EXISTS {{S}}.checkpoints (
    id   bigserial   PRIMARY KEY,
    time timestamptz NOT NULL,
    body text        NOT NULL
);
COMMENT ON TABLE {{S}}.checkpoints IS 'Keyturn audit checkpoints (signed chain heads); append-only';

-- Append-only, for every role: the owner and superusers can disable these triggers, and
-- the hash chain and signed checkpoints show what they then change.
CREATE OR REPLACE FUNCTION {{S}}.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'keyturn audit trail is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME;
END
$fn$;
REVOKE ALL ON FUNCTION {{S}}.refuse_change() FROM PUBLIC;

DROP TRIGGER IF EXISTS append_only ON {{S}}.records;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {{S}}.records
    FOR EACH ROW EXECUTE FUNCTION {{S}}.refuse_change();
DROP TRIGGER IF EXISTS append_only_truncate ON {{S}}.records;
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {{S}}.records
    FOR EACH STATEMENT EXECUTE FUNCTION {{S}}.refuse_change();
DROP TRIGGER IF EXISTS append_only ON {{S}}.checkpoints;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {{S}}.checkpoints
    FOR EACH ROW EXECUTE FUNCTION {{S}}.refuse_change();
DROP TRIGGER IF EXISTS append_only_truncate ON {{S}}.checkpoints;
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {{S}}.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION {{S}}.refuse_change();

REVOKE ALL ON {{S}}.records, {{S}}.checkpoints FROM PUBLIC;
REVOKE ALL ON SEQUENCE {{S}}.checkpoints_id_seq FROM PUBLIC;
{{GRANTS}}COMMIT;
`

// grantsTemplate gives the writer role what appending and verifying need and nothing
// more; the REVOKE takes back anything granted by hand before.
const grantsTemplate = `
-- The workers' role: read and append, nothing else.
REVOKE ALL ON {{S}}.records, {{S}}.checkpoints FROM {{W}};
GRANT USAGE ON SCHEMA {{S}} TO {{W}};
GRANT SELECT, INSERT ON {{S}}.records, {{S}}.checkpoints TO {{W}};
GRANT USAGE ON SEQUENCE {{S}}.checkpoints_id_seq TO {{W}};
`

// SchemaSQL returns the SQL that creates the sink's schema in schema (DefaultSchema when
// empty) and grants writerRole, an existing role, SELECT and INSERT only. With writerRole
// empty it grants nothing: the owner then writes itself, which is fine for development
// and is not least privilege. The SQL is one transaction, safe to apply again.
func SchemaSQL(schema, writerRole string) string {
	if schema == "" {
		schema = DefaultSchema
	}
	s := pgx.Identifier{schema}.Sanitize()
	grants := ""
	if writerRole != "" {
		grants = strings.ReplaceAll(grantsTemplate, "{{W}}", pgx.Identifier{writerRole}.Sanitize())
	}
	out := strings.ReplaceAll(schemaTemplate, "{{GRANTS}}", grants)
	out = strings.ReplaceAll(out, "{{LOCK}}", strconv.FormatInt(installLockKey, 10))
	return strings.ReplaceAll(out, "{{S}}", s)
}

// installLockKey is the advisory lock concurrent installs take.
var installLockKey = lockKey("install", "")

// Install applies SchemaSQL(schema, writerRole) over adminDSN, which should be the role
// that is to own the tables (it needs CREATE on the database, or an existing schema it
// owns). It is idempotent and safe to run from several processes at once.
func Install(ctx context.Context, adminDSN, schema, writerRole string) error {
	cfg, err := parseDSN(adminDSN)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fail("install: connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// No arguments: pgx sends it as one simple query, which may hold many statements.
	if _, err := conn.Exec(ctx, SchemaSQL(schema, writerRole)); err != nil {
		return fail("install", err)
	}
	return nil
}

// lockKey is the 64-bit advisory lock key of a chain in a schema: the first 8 bytes of
// SHA-256. Two chains with the same key share a lock, which only makes one wait for the
// other.
func lockKey(schema, chain string) int64 {
	sum := sha256.Sum256([]byte("keyturn audit\x00" + schema + "\x00" + chain))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

var errNotInstalled = errors.New("the audit schema is not installed (the owner role applies it: docs/audit-postgres.md)")
