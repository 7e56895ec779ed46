// Package testdeps holds the one rule every test harness (pgtest, vaulttest, mototest)
// follows for a missing server: outside CI it is a skip with the reason, under CI it is a
// failure, so a machine without the server can never report a green run.
package testdeps

import (
	"os"
	"strconv"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true, 1, ...), where a missing
// dependency must fail instead of skip.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing remembers why a package's shared server could not start (TestMain found its
// binaries missing outside CI), so each test that needs it can skip with the reason.
type Missing struct {
	mu     sync.Mutex
	reason string
}

// Record keeps the reason.
func (m *Missing) Record(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reason = reason
}

// Skip skips t with the recorded reason. With none recorded the harness was misused (no
// TestMain started the server), which fails t.
func (m *Missing) Skip(t testing.TB, harness string) {
	t.Helper()
	m.mu.Lock()
	reason := m.reason
	m.mu.Unlock()
	if reason == "" {
		t.Fatalf("%s: no server; call %s.Main from TestMain", harness, harness)
	}
	t.Skipf("skipping: %s (set CI=true to make this a failure)", reason)
}
