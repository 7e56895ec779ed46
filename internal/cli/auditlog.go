package cli

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/pgsink"
	"github.com/keyturn/keyturn/internal/home"
)

// auditFlags say where the audit trail is kept and which key signs its checkpoints.
type auditFlags struct {
	// dir is the file sink's directory (default <home>/audit).
	dir string
	// postgres, when set, is the connection string of the Postgres sink, used instead of
	// the file sink; schema is its schema.
	postgres, schema string
	// keyFile is the Ed25519 signing key (default <home>/audit.key, made on first use).
	keyFile string
	// The worker's: copy every record to stdout, and how often to sign a checkpoint.
	stdout          bool
	checkpointEvery time.Duration
}

// addAuditWorkerFlags adds the flags of a command that runs a worker (worker, dev).
func addAuditWorkerFlags(cmd *cobra.Command, f *auditFlags) {
	cmd.Flags().BoolVar(&f.stdout, "audit-stdout", envOr("KEYTURN_AUDIT_STDOUT", "") == "true", "also write every audit record to stdout as one JSON line, for log shippers (KEYTURN_AUDIT_STDOUT=true)")
	cmd.Flags().DurationVar(&f.checkpointEvery, "audit-checkpoint-interval", audit.DefaultCheckpointInterval, "how often the worker signs a checkpoint over the audit chains that changed (and once more when it stops)")
}

// workerAuditLog opens the audit trail a worker records to and signs. It checks the
// checkpoint interval first, so a bad flag changes nothing.
func (g *globals) workerAuditLog(cmd *cobra.Command, logger *slog.Logger) (*audit.Log, error) {
	if g.audit.checkpointEvery < time.Second {
		return nil, fmt.Errorf("--audit-checkpoint-interval %s is too short: use 1s or more (default %s)", g.audit.checkpointEvery, audit.DefaultCheckpointInterval)
	}
	l, err := g.auditLog(true)
	if err != nil {
		return nil, err
	}
	l.Logger = logger
	if g.audit.stdout {
		l.Mirror = cmd.OutOrStdout()
	}
	return l, nil
}

func (f *auditFlags) register(pf *pflag.FlagSet) {
	// No default from the environment here: cobra prints defaults in --help, and the
	// connection string may hold a password. defaults reads KEYTURN_AUDIT_POSTGRES.
	pf.StringVar(&f.postgres, "audit-postgres", "", "keep the audit trail in PostgreSQL: a connection string (KEYTURN_AUDIT_POSTGRES; keep the password out of it with PGPASSWORD or PGPASSFILE); see docs/audit-postgres.md")
	pf.StringVar(&f.schema, "audit-postgres-schema", envOr("KEYTURN_AUDIT_POSTGRES_SCHEMA", ""), "schema of the Postgres audit tables (KEYTURN_AUDIT_POSTGRES_SCHEMA; default keyturn_audit)")
	pf.StringVar(&f.dir, "audit-dir", envOr("KEYTURN_AUDIT_DIR", ""), "directory of the audit trail's file sink (KEYTURN_AUDIT_DIR; default <home>/audit)")
	pf.StringVar(&f.keyFile, "audit-signing-key", envOr("KEYTURN_AUDIT_SIGNING_KEY", ""), "Ed25519 key that signs the audit trail's checkpoints (KEYTURN_AUDIT_SIGNING_KEY; default <home>/audit.key, made on first use; its public key is the same path + .pub)")
}

// defaults fills what was not given from the state directory, and makes the paths
// absolute now, so every message names the place they are (a command run from another
// directory later finds the same files).
func (f *auditFlags) defaults(dir home.Dir) {
	if f.postgres == "" {
		f.postgres = os.Getenv("KEYTURN_AUDIT_POSTGRES")
	}
	if f.dir == "" {
		f.dir = dir.Audit()
	}
	if f.keyFile == "" {
		f.keyFile = dir.AuditKey()
	}
	if abs, err := filepath.Abs(f.dir); err == nil {
		f.dir = abs
	}
	if abs, err := filepath.Abs(f.keyFile); err == nil {
		f.keyFile = abs
	}
}

// auditPlace names where the audit trail is kept, for messages: never the connection
// string itself, which may hold a password.
func (g *globals) auditPlace() string {
	if g.audit.postgres != "" {
		return "PostgreSQL (schema " + cmp.Or(g.audit.schema, pgsink.DefaultSchema) + ")"
	}
	return g.audit.dir
}

// openAuditSink opens the configured sink.
//
// With --audit-postgres the Postgres sink is used instead; its tables must have been
// installed (docs/audit-postgres.md), which Open checks.
func (g *globals) openAuditSink() (audit.Sink, error) {
	if g.audit.postgres != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := pgsink.Open(ctx, g.audit.postgres, g.audit.schema)
		if err != nil {
			return nil, fmt.Errorf("%w (the audit trail's Postgres sink, --audit-postgres or KEYTURN_AUDIT_POSTGRES)", err)
		}
		return s, nil
	}
	s, err := audit.OpenFile(g.audit.dir)
	if err != nil {
		return nil, fmt.Errorf("%w (set --audit-dir or KEYTURN_AUDIT_DIR)", err)
	}
	return s, nil
}

// auditLog opens the audit trail for a command that appends to it. With sign, it also
// loads the signing key (creating it in the state directory on first use), as the worker
// does to sign checkpoints.
func (g *globals) auditLog(sign bool) (*audit.Log, error) {
	s, err := g.openAuditSink()
	if err != nil {
		return nil, err
	}
	l := &audit.Log{Sink: s}
	if sign {
		signer, err := audit.LoadOrCreateSigningKey(g.audit.keyFile)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%w (set --audit-signing-key or KEYTURN_AUDIT_SIGNING_KEY)", err)
		}
		l.Signer = signer
	}
	return l, nil
}
