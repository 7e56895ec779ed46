// Package pgtest gives tests throwaway PostgreSQL clusters (package pgcluster) and
// PgBouncers in front of them, with the harnesses' rule for a missing server: when the
// PostgreSQL server binaries are missing, tests are skipped with a reason, unless the
// environment variable CI is "true": there a missing server is a broken runner and the
// tests fail.
package pgtest

import "github.com/keyturn/keyturn/internal/pgcluster"

// Cluster is a running throwaway cluster (pgcluster.Cluster).
type Cluster = pgcluster.Cluster

// Options adjust a cluster (pgcluster.Options).
type Options = pgcluster.Options

// ErrUnavailable reports that no PostgreSQL server binaries were found on this machine.
var ErrUnavailable = pgcluster.ErrUnavailable

// Start starts a cluster outside a test (pgcluster.Start); the caller must call Stop.
func Start(opts Options) (*Cluster, error) { return pgcluster.Start(opts) }
