package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/keyturn/keyturn/worker"
)

// TestReplayRecordedHistories replays histories recorded from real rotations on the
// embedded server (`make record-histories`) against today's workflow code. A change that
// breaks determinism for workflows already running in production fails here. Histories
// recorded by earlier versions of the code are kept in subdirectories (before-issue-10/)
// and must replay too: a rotation running while its worker is upgraded finishes on the
// new code.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	older, err := filepath.Glob(filepath.Join("testdata", "histories", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, older...)
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories: run `make record-histories`")
	}
	for _, f := range files {
		name, _ := filepath.Rel(filepath.Join("testdata", "histories"), f)
		t.Run(name, func(t *testing.T) {
			h, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r)
			if err := r.ReplayWorkflowHistory(quietLogger(), h); err != nil {
				t.Fatalf("replay %s (%d events): %v", f, len(h.GetEvents()), err)
			}
		})
	}
}

// quietLogger keeps the replayer's own logs (stack traces of the expected panics on a
// mismatch) out of the test output; the returned error says what went wrong.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
