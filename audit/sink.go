package audit

import (
	"context"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Sink stores records and checkpoints. Implementations serialise appends per chain, never
// globally, and are safe for concurrent use by several processes (the file sink with a
// file lock, the Postgres sink with a per-chain transaction lock).
type Sink interface {
	// Append seals r at the end of its chain (ChainOf) and stores it, unless a record with
	// r.ID is already stored: then it stores nothing and returns that record with added
	// false. A retried append is therefore a no-op.
	Append(ctx context.Context, r Record) (stored Record, added bool, err error)
	// Records returns the records f selects, each chain in sequence order, exactly as
	// stored (a tampered record is returned as it is, for Verify to find).
	Records(ctx context.Context, f Filter) ([]Record, error)
	// Heads returns the last record of every chain as a Head.
	Heads(ctx context.Context) ([]Head, error)
	// AddCheckpoint stores a signed checkpoint.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns every stored checkpoint, oldest first.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	Close() error
}

// UnreadableChain is the chain a sink returns a stored record under when it cannot parse
// it (Seq is then its line or row, Error says which), and the key ID of a checkpoint it
// cannot parse: Verify reports both instead of the sink failing the whole read.
const UnreadableChain = "unreadable"

// Filter selects records. A zero Filter selects every record.
type Filter struct {
	// Chains, when set, selects whole chains (Verify and the evidence bundle read these).
	Chains   []string
	SecretID secret.ID
	// IncidentID selects the records that name the incident.
	IncidentID string
	// Actor matches Actor.String() exactly, or its type alone ("operator").
	Actor string
	Since time.Time
	Until time.Time
}

// Match reports whether f selects r. Sinks that cannot filter in their query use it.
func (f Filter) Match(r Record) bool {
	if len(f.Chains) > 0 && !contains(f.Chains, r.Chain) {
		return false
	}
	if f.SecretID != "" && r.SecretID != f.SecretID {
		return false
	}
	if f.IncidentID != "" && r.IncidentID != f.IncidentID {
		return false
	}
	if f.Actor != "" && f.Actor != r.Actor.String() && f.Actor != r.Actor.Type {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && r.Time.After(f.Until) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Head is the end of one chain: how many records it holds and the last one's hash.
type Head struct {
	Chain string `json:"chain"`
	Count int64  `json:"count"`
	Hash  string `json:"hash"`
}

// validChainName reports whether a chain name can go into a checkpoint's signed text: no
// tab or newline (secret and incident IDs are validated long before, this is a guard).
func validChainName(c string) bool { return c != "" && !strings.ContainsAny(c, "\t\n\r") }

// validHash reports whether h is a record hash as ComputeHash writes it: 64 lowercase hex
// digits.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
