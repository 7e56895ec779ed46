package tests

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/worker"
)

// decodedHistory fetches a workflow's history and decrypts its payloads (failure
// attributes included) with the env's codec, as the Web UI shows it through the codec
// server.
func decodedHistory(t *testing.T, env *testenv.Env, workflowID, runID string) *historypb.History {
	t.Helper()
	h := history(t, env, workflowID, runID)
	err := proxy.VisitPayloads(context.Background(), h, proxy.VisitPayloadsOptions{
		Visitor: func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return env.Codec.Decode(p)
		},
	})
	if err != nil {
		t.Fatalf("decode history of %s: %v", workflowID, err)
	}
	return h
}

// stepRuns lists, in order, the activities a decoded history ran: local ones (one
// marker each) and regular ones (scheduled) apart.
func stepRuns(t *testing.T, h *historypb.History) (local, regular []string) {
	t.Helper()
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			regular = append(regular, a.GetActivityType().GetName())
		}
		if m := e.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == "LocalActivity" {
			var la struct{ ActivityType string }
			if err := converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["data"], &la); err != nil {
				t.Fatalf("local activity marker %d: %v", e.GetEventId(), err)
			}
			local = append(local, la.ActivityType)
		}
	}
	return local, regular
}

// retriedAStep reports whether the history shows a step that ran more than once: an
// activity attempt after the first, or a local attempt that failed (Promote's first
// attempt is local, and its regular activity follows).
func retriedAStep(h *historypb.History) bool {
	if maxAttempt(h) > 1 {
		return true
	}
	for _, e := range h.GetEvents() {
		if m := e.GetMarkerRecordedEventAttributes(); m != nil && m.GetFailure() != nil {
			return true
		}
	}
	return false
}

// history fetches a workflow's whole history as stored: payloads encrypted.
func history(t *testing.T, env *testenv.Env, workflowID, runID string) *historypb.History {
	t.Helper()
	ctx := context.Background()
	it := env.Client.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("read history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	return h
}

// checkReplay replays a history recorded on the real server against today's workflow
// code, so a non-deterministic change fails here as well as in workflows' replay tests.
// With KEYTURN_RECORD_HISTORIES=1 the history is also saved as a replay fixture.
func checkReplay(t *testing.T, env *testenv.Env, workflowID, runID, fixture string) {
	t.Helper()
	h := decodedHistory(t, env, workflowID, runID)
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r)
	if err := r.ReplayWorkflowHistory(quietLogger(), h); err != nil {
		t.Fatalf("replay of %s (%d events) failed: %v", workflowID, len(h.Events), err)
	}
	if os.Getenv("KEYTURN_RECORD_HISTORIES") == "1" {
		data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "workflows", "testdata", "histories", fixture+".json")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", path, len(h.Events))
	}
}

// quietLogger keeps the replayer's own logs (stack traces of the expected panics on a
// mismatch) out of the test output; the returned error says what went wrong.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
