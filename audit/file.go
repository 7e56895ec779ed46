package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/keyturn/keyturn/internal/filelock"
)

// FileSink keeps the audit trail as JSON lines in a directory (the state directory's
// audit/ for `keyturn dev`):
//
//	records.jsonl      one record per line, appended only
//	checkpoints.jsonl  one signed checkpoint per line
//	lock               flock'd by every writer, so a worker and the CLI share the files
//
// Each writer keeps an index of the IDs and chain heads it has read and, under the lock,
// catches up with what other processes appended before it appends, so a retried event is
// found and chains stay linked across processes.
type FileSink struct {
	dir string
	// turn is the writer's turn (held by a send, given back by a receive): it guards
	// what follows. It is a channel so that waiting for it can end with a context.
	turn chan struct{}
	// queue holds the records waiting for a writer's turn (see Append).
	queueMu sync.Mutex
	queue   []*pendingAppend
	// offset is how far records.jsonl has been read into ids and heads.
	offset int64
	ids    map[string]Record
	heads  map[string]Head
}

// Names of the files in a FileSink's directory.
const (
	recordsFile     = "records.jsonl"
	checkpointsFile = "checkpoints.jsonl"
	lockName        = "lock"
)

// OpenFile opens (creating, 0700) the file sink in dir.
func OpenFile(dir string) (*FileSink, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("audit directory %q must be an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit directory: %w", err)
	}
	return &FileSink{dir: dir, turn: make(chan struct{}, 1), ids: map[string]Record{}, heads: map[string]Head{}}, nil
}

// Dir is the sink's directory.
func (s *FileSink) Dir() string { return s.dir }

func (s *FileSink) path(name string) string { return filepath.Join(s.dir, name) }

// Append implements Sink. Each record is written and synced before Append returns, and
// records appended at once by several goroutines share one write and one sync (a group
// commit): the caller that gets the writer's turn commits every record queued by then.
// Without it a batch of containments, each waiting for its own fsync, spends most of its
// time waiting for the disk. A caller waits until its record is committed or its ctx
// ends, whichever is first; a record whose caller gave up before its turn is not written.
func (s *FileSink) Append(ctx context.Context, r Record) (Record, bool, error) {
	if err := r.Check(); err != nil {
		return Record{}, false, err
	}
	p := &pendingAppend{ctx: ctx, r: r, done: make(chan appendResult, 1)}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()
	for {
		select {
		case res := <-p.done:
			return res.stored, res.added, res.err
		case s.turn <- struct{}{}:
			s.commitQueued()
		case <-ctx.Done():
			return Record{}, false, fmt.Errorf("audit record %s: %w", r.ID, ctx.Err())
		}
	}
}

// commitQueued commits what is queued; the caller holds the writer's turn, which this
// gives back.
func (s *FileSink) commitQueued() {
	defer func() { <-s.turn }()
	s.queueMu.Lock()
	batch := s.queue
	s.queue = nil
	s.queueMu.Unlock()
	if len(batch) > 0 { // empty when an earlier turn committed them all
		s.commit(batch)
	}
}

// pendingAppend is a record waiting for a writer's turn, with its caller's context; done
// receives how it ended.
type pendingAppend struct {
	ctx  context.Context
	r    Record
	done chan appendResult
}

type appendResult struct {
	stored Record
	added  bool
	err    error
}

// commit appends batch under the file lock with one write and one sync, and tells each
// record's caller how it ended. It runs in the writer's turn. The file lock is waited for
// as long as any caller in the batch still waits. Records already stored (a retried
// event, or the same event twice in the batch) are returned as stored.
func (s *FileSink) commit(batch []*pendingAppend) {
	var live []*pendingAppend
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- appendResult{err: err} // its caller has returned; nothing is written
			continue
		}
		live = append(live, p)
	}
	batch = live
	fail := func(err error) {
		for _, p := range batch {
			p.done <- appendResult{err: err}
		}
	}
	if len(batch) == 0 {
		return
	}
	lockCtx, cancel := untilAllDone(batch)
	defer cancel()
	unlock, err := filelock.Lock(lockCtx, s.path(lockName))
	if err != nil {
		fail(err)
		return
	}
	defer unlock()
	if err := s.catchUp(); err != nil {
		fail(err)
		return
	}
	if err := s.dropPartialLine(); err != nil {
		fail(err)
		return
	}
	heads := map[string]Head{} // chain heads as this batch moves them
	sealed := map[string]Record{}
	results := make([]appendResult, len(batch))
	var lines []byte
	var added []Record
	for i, p := range batch {
		if stored, ok := s.ids[p.r.ID]; ok {
			results[i] = appendResult{stored: stored}
			continue
		}
		if stored, ok := sealed[p.r.ID]; ok {
			results[i] = appendResult{stored: stored}
			continue
		}
		chain := ChainOf(p.r)
		h, moved := heads[chain]
		if !moved {
			h = s.heads[chain]
		}
		rec := p.r.Seal(chain, h.Count+1, h.Hash)
		line, err := rec.MarshalLine()
		if err != nil {
			results[i] = appendResult{err: fmt.Errorf("audit record %s: %w", p.r.ID, err)}
			continue
		}
		heads[chain] = Head{Chain: chain, Count: rec.Seq, Hash: rec.Hash}
		sealed[p.r.ID] = rec
		lines = append(lines, line...)
		added = append(added, rec)
		results[i] = appendResult{stored: rec, added: true}
	}
	if len(lines) > 0 {
		if err := appendSync(s.path(recordsFile), lines); err != nil {
			// Nothing of a failed write counts: what reached the file is cut off again,
			// under the lock, so no line is read back as stored without its sync.
			if terr := os.Truncate(s.path(recordsFile), s.offset); terr != nil {
				err = fmt.Errorf("%w (and cutting off the unsynced lines failed: %v)", err, terr)
			}
			fail(err)
			return
		}
		s.offset += int64(len(lines))
		for _, rec := range added {
			s.index(rec)
		}
	}
	for i, p := range batch {
		p.done <- results[i]
	}
}

// untilAllDone is a context that ends when every caller in batch has stopped waiting.
func untilAllDone(batch []*pendingAppend) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for _, p := range batch {
			select {
			case <-p.ctx.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	return ctx, cancel
}

// catchUp reads what was appended since the last read into the index. A line that does
// not parse (a tampered file) is skipped here: Verify reports it, and rotations go on.
func (s *FileSink) catchUp() error {
	f, err := os.Open(s.path(recordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit records: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(s.offset, io.SeekStart); err != nil {
		return fmt.Errorf("audit records: %w", err)
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			s.offset += int64(len(line))
			var r Record
			if json.Unmarshal(line, &r) == nil {
				s.index(r)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil // a partial last line is left for the writer that is finishing it
		}
		if err != nil {
			return fmt.Errorf("audit records: %w", err)
		}
	}
}

func (s *FileSink) index(r Record) {
	s.ids[r.ID] = r
	if h := s.heads[r.Chain]; r.Seq >= h.Count {
		s.heads[r.Chain] = Head{Chain: r.Chain, Count: r.Seq, Hash: r.Hash}
	}
}

// dropPartialLine removes what follows the last complete line of records.jsonl. Every
// write holds the lock and ends with a newline, so under the lock a line without one is
// what a writer that crashed (or ran out of disk) left: it was never acknowledged, and the
// next record appended to it would be glued to it and lost.
func (s *FileSink) dropPartialLine() error {
	fi, err := os.Stat(s.path(recordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit records: %w", err)
	}
	if fi.Size() > s.offset {
		if err := os.Truncate(s.path(recordsFile), s.offset); err != nil {
			return fmt.Errorf("audit records: drop the partial last line a crashed writer left: %w", err)
		}
	}
	return nil
}

// appendSync appends b to path (0600) and syncs it, so an acknowledged record survives a
// crash of the machine.
func appendSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// Records implements Sink: records in file order, grouped by chain. A line that does not
// parse is returned as a record holding only its position, so Verify reports it.
func (s *FileSink) Records(_ context.Context, f Filter) ([]Record, error) {
	lines, err := readLines(s.path(recordsFile))
	if err != nil {
		return nil, err
	}
	var out []Record
	for i, line := range lines {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			r = Record{Chain: UnreadableChain, Seq: int64(i + 1), Error: fmt.Sprintf("line %d of %s does not parse", i+1, recordsFile)}
		}
		if f.Match(r) || r.Chain == UnreadableChain {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Chain < out[j].Chain })
	return out, nil
}

// Heads implements Sink.
func (s *FileSink) Heads(ctx context.Context) ([]Head, error) {
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	unlock, err := filelock.Lock(ctx, s.path(lockName))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.catchUp(); err != nil {
		return nil, err
	}
	out := make([]Head, 0, len(s.heads))
	for _, h := range s.heads {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chain < out[j].Chain })
	return out, nil
}

// AddCheckpoint implements Sink.
func (s *FileSink) AddCheckpoint(ctx context.Context, c Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit checkpoint: %w", err)
	}
	unlock, err := filelock.Lock(ctx, s.path(lockName))
	if err != nil {
		return err
	}
	defer unlock()
	return appendSync(s.path(checkpointsFile), append(b, '\n'))
}

// Checkpoints implements Sink. A line that does not parse is returned as an unsigned
// checkpoint, which Verify reports.
func (s *FileSink) Checkpoints(context.Context) ([]Checkpoint, error) {
	lines, err := readLines(s.path(checkpointsFile))
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, 0, len(lines))
	for i, line := range lines {
		var c Checkpoint
		if json.Unmarshal(line, &c) != nil {
			c = Checkpoint{KeyID: UnreadableChain, Heads: []Head{{Chain: fmt.Sprintf("line %d of %s", i+1, checkpointsFile)}}}
		}
		out = append(out, c)
	}
	return out, nil
}

// Close implements Sink.
func (s *FileSink) Close() error { return nil }

// readLines returns the complete lines of path; none when it does not exist.
func readLines(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // a partial last line: a write in progress or cut by a crash
		}
		if line := bytes.TrimSpace(b[:i]); len(line) > 0 {
			out = append(out, line)
		}
		b = b[i+1:]
	}
	return out, nil
}
