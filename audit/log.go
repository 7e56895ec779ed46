package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultCheckpointInterval is how often a worker signs the chains that moved.
const DefaultCheckpointInterval = time.Minute

// Log is the audit trail a worker or a command writes to: it appends to a sink, copies
// each new record to a mirror (stdout for log shippers) and, run as a loop, signs
// checkpoints of the chains that moved.
type Log struct {
	Sink Sink
	// Signer signs checkpoints; nil signs none (a command that only appends).
	Signer *Signer
	// Mirror, when set, receives each newly stored record as one JSON line.
	Mirror io.Writer
	Logger *slog.Logger

	mirrorMu sync.Mutex
}

// Append stores r (see Sink.Append) and mirrors it. A record already stored (a retried
// event) is not mirrored again.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	stored, added, err := l.Sink.Append(ctx, r)
	if err != nil {
		return Record{}, err
	}
	if l.Mirror != nil && added {
		if line, err := stored.MarshalLine(); err == nil {
			l.mirrorMu.Lock()
			_, _ = l.Mirror.Write(line)
			l.mirrorMu.Unlock()
		}
	}
	return stored, nil
}

// Checkpoint signs the chains that moved since the last checkpoint, now.
func (l *Log) Checkpoint(ctx context.Context) error {
	if l.Signer == nil {
		return nil
	}
	cp, signed, err := Checkpointer{Sink: l.Sink, Signer: l.Signer}.Checkpoint(ctx, time.Now())
	if err != nil || !signed || l.Mirror == nil {
		return err
	}
	// Mirrored too: a copy of the signed heads kept off this machine is what catches a
	// trail cut back together with its checkpoints.
	if b, err := json.Marshal(struct {
		Checkpoint Checkpoint `json:"checkpoint"`
	}{cp}); err == nil {
		l.mirrorMu.Lock()
		_, _ = l.Mirror.Write(append(b, '\n'))
		l.mirrorMu.Unlock()
	}
	return nil
}

// RunCheckpoints signs a checkpoint every interval until ctx ends, and once more then,
// so a worker that stops leaves its last records signed.
func (l *Log) RunCheckpoints(ctx context.Context, interval time.Duration) {
	if l.Signer == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			l.checkpointLogged(final)
			cancel()
			return
		case <-t.C:
			l.checkpointLogged(ctx)
		}
	}
}

func (l *Log) checkpointLogged(ctx context.Context) {
	if err := l.Checkpoint(ctx); err != nil && l.Logger != nil {
		l.Logger.Warn("audit checkpoint not signed; the next attempt signs what this one missed", "error", err)
	}
}
