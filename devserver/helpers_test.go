package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const testTaskQueue = "devserver-test"

// keyturnAttributes are the search attributes Keyturn registers.
func keyturnAttributes() map[string]enums.IndexedValueType {
	return map[string]enums.IndexedValueType{
		"KeyturnSecretID":   enums.INDEXED_VALUE_TYPE_KEYWORD,
		"KeyturnKind":       enums.INDEXED_VALUE_TYPE_KEYWORD,
		"KeyturnStep":       enums.INDEXED_VALUE_TYPE_KEYWORD,
		"KeyturnIncidentID": enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// testLogger sends server and client logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// startServer starts a dev server, reports how long it took to be ready and
// stops it when the test ends.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	srv, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("dev server ready in %v at %s (UI %q)", time.Since(began).Round(time.Millisecond), srv.FrontendAddr(), srv.UIURL())
	t.Cleanup(func() { stopServer(t, srv) })
	return srv
}

// stopServer stops srv and reports how long that took.
func stopServer(t *testing.T, srv *Server) {
	t.Helper()
	began := time.Now()
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("dev server stopped in %v", time.Since(began).Round(time.Millisecond))
}

// dial connects an SDK client to srv and closes it when the test ends.
func dial(t *testing.T, srv *Server) client.Client {
	t.Helper()
	return dialNamespace(t, srv, srv.Namespace())
}

// dialNamespace connects an SDK client to a namespace of srv.
func dialNamespace(t *testing.T, srv *Server, namespace string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  srv.FrontendAddr(),
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(quietLogger(testLogger(t), slog.LevelWarn)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.FrontendAddr(), err)
	}
	t.Cleanup(c.Close)
	return c
}

// runWorker runs a worker for the test workflow until the returned stop is
// called or the test ends.
func runWorker(t *testing.T, c client.Client) (stop func()) {
	t.Helper()
	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	w.RegisterActivity(greetActivity)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	stop = sync.OnceFunc(w.Stop)
	t.Cleanup(stop)
	return stop
}

// greetWorkflow runs one activity and returns its result.
func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var greeting string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &greeting)
	return greeting, err
}

func greetActivity(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

// runGreet starts greetWorkflow with the given search attributes, waits for
// it and checks its result. It returns the workflow ID.
func runGreet(t *testing.T, c client.Client, id string, attrs ...temporal.SearchAttributeUpdate) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             testTaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	}, greetWorkflow, "keyturn")
	if err != nil {
		t.Fatalf("start workflow %s: %v", id, err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow %s: %v", id, err)
	}
	if got != "hello keyturn" {
		t.Fatalf("workflow %s returned %q, want %q", id, got, "hello keyturn")
	}
	t.Logf("workflow %s with one activity done in %v", id, time.Since(began).Round(time.Millisecond))
	return id
}

// requireSearchAttributes fails unless every attribute in want is registered
// in the namespace with its type.
func requireSearchAttributes(t *testing.T, c client.Client, namespace string, want map[string]enums.IndexedValueType) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	for name, typ := range want {
		if got, ok := resp.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: got %v (registered %v), want %v", name, got, ok, typ)
		}
	}
}

// awaitVisible polls visibility until query finds workflowID; visibility is
// written asynchronously after the workflow's own state.
func awaitVisible(t *testing.T, c client.Client, namespace, query, workflowID string) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace,
			Query:     query,
		})
		if err != nil {
			last = err.Error()
		} else {
			var ids []string
			for _, e := range resp.GetExecutions() {
				if e.GetExecution().GetWorkflowId() == workflowID {
					t.Logf("query %q found %s after %v", query, workflowID, time.Since(began).Round(time.Millisecond))
					return
				}
				ids = append(ids, e.GetExecution().GetWorkflowId())
			}
			last = fmt.Sprintf("found %v", ids)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("query %q did not find %s within 20s; last: %s", query, workflowID, last)
}

// requireCompletedHistory fails unless the workflow's stored history holds a
// completed activity and ends in completion.
func requireCompletedHistory(t *testing.T, c client.Client, workflowID string) {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var types []enums.EventType
	for iter.HasNext() {
		event, err := iter.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		types = append(types, event.GetEventType())
	}
	if len(types) == 0 || types[len(types)-1] != enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED ||
		!slices.Contains(types, enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
		t.Fatalf("history of %s: %v, want a completed activity and workflow", workflowID, types)
	}
	t.Logf("history of %s kept: %d events", workflowID, len(types))
}

// clusterIDOf returns the ID the server stored for its cluster.
func clusterIDOf(t *testing.T, c client.Client) string {
	t.Helper()
	info, err := c.WorkflowService().GetClusterInfo(context.Background(), &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatalf("GetClusterInfo: %v", err)
	}
	if info.GetClusterId() == "" {
		t.Fatal("GetClusterInfo returned no cluster ID")
	}
	return info.GetClusterId()
}
