package testenv

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers (server, worker, CLI).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testWriter sends logs to the test output only with KEYTURN_TEST_VERBOSE=1; otherwise
// they are kept in the env's buffer and scanned, not printed.
func testWriter(t testing.TB) io.Writer {
	if os.Getenv("KEYTURN_TEST_VERBOSE") == "1" {
		return os.Stderr
	}
	return io.Discard
}
