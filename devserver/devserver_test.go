package devserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

func TestInMemoryRunsWorkflowsAndRegistersSearchAttributes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Options{
		FrontendAddr:     "127.0.0.1:0",
		DisableUI:        true,
		SearchAttributes: keyturnAttributes(),
	})
	if srv.UIURL() != "" {
		t.Errorf("UIURL = %q with the UI disabled, want empty", srv.UIURL())
	}
	if srv.Namespace() != DefaultNamespace {
		t.Errorf("Namespace = %q, want %q", srv.Namespace(), DefaultNamespace)
	}
	if strings.HasSuffix(srv.FrontendAddr(), ":0") {
		t.Fatalf("FrontendAddr = %q, want the picked port", srv.FrontendAddr())
	}

	c := dial(t, srv)
	runWorker(t, c)
	requireSearchAttributes(t, c, srv.Namespace(), keyturnAttributes())

	id := runGreet(t, c, "rotate/x", temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID").ValueSet("x"))
	runGreet(t, c, "rotate/y", temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID").ValueSet("y"))
	awaitVisible(t, c, srv.Namespace(), `KeyturnSecretID = "x"`, id)
}

// Extra namespaces get the same search attributes, and a worker in one never takes the
// tasks of another namespace's task queue of the same name.
func TestExtraNamespacesAreSeparate(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Options{
		FrontendAddr:     "127.0.0.1:0",
		DisableUI:        true,
		ExtraNamespaces:  []string{"second"},
		SearchAttributes: keyturnAttributes(),
	})
	first := dial(t, srv)
	second := dialNamespace(t, srv, "second")
	requireSearchAttributes(t, first, srv.Namespace(), keyturnAttributes())
	requireSearchAttributes(t, second, "second", keyturnAttributes())

	// Only the second namespace has a worker: a workflow started in the first one, before
	// the second one's runs, is never picked up.
	ctx := context.Background()
	waiting, err := first.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "rotate/x", TaskQueue: testTaskQueue}, greetWorkflow, "keyturn")
	if err != nil {
		t.Fatalf("start in the first namespace: %v", err)
	}
	runWorker(t, second)
	runGreet(t, second, "rotate/x", temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID").ValueSet("x"))
	iter := first.GetWorkflowHistory(ctx, waiting.GetID(), waiting.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		event, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if event.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_STARTED {
			t.Fatal("a worker of the second namespace took a workflow task of the first")
		}
	}
}

func TestRestartKeepsStateAndAddsNewSearchAttributes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := map[string]enums.IndexedValueType{
		"KeyturnSecretID": enums.INDEXED_VALUE_TYPE_KEYWORD,
		"KeyturnKind":     enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
	opts := Options{
		StateDir:         dir,
		Namespace:        "keyturn",
		FrontendAddr:     "127.0.0.1:0",
		UIAddr:           UIDisabled,
		SearchAttributes: first,
	}

	// Step 1. Fresh database: run a workflow, then stop.
	srv := startServer(t, opts)
	c := dial(t, srv)
	stopWorker := runWorker(t, c)
	clusterID := clusterIDOf(t, c)
	requireSearchAttributes(t, c, "keyturn", first)
	earlier := runGreet(t, c, "rotate/before-restart", temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID").ValueSet("db"))
	stopWorker()
	c.Close()
	stopServer(t, srv)

	// Step 2. Same file, more attributes.
	opts.SearchAttributes = keyturnAttributes()
	srv = startServer(t, opts)
	c = dial(t, srv)
	stopWorker = runWorker(t, c)
	if got := clusterIDOf(t, c); got != clusterID {
		t.Errorf("cluster ID changed across restart: %s, then %s", clusterID, got)
	}
	if _, err := c.WorkflowService().DescribeNamespace(context.Background(),
		&workflowservice.DescribeNamespaceRequest{Namespace: "keyturn"}); err != nil {
		t.Fatalf("namespace gone after restart: %v", err)
	}
	requireSearchAttributes(t, c, "keyturn", keyturnAttributes())
	requireCompletedHistory(t, c, earlier)
	awaitVisible(t, c, "keyturn", `KeyturnSecretID = "db"`, earlier)
	// The attribute added by this start must be usable at once.
	later := runGreet(t, c, "rotate/after-restart", temporal.NewSearchAttributeKeyKeyword("KeyturnStep").ValueSet("verify"))
	awaitVisible(t, c, "keyturn", `KeyturnStep = "verify"`, later)
	stopWorker()
	c.Close()
	stopServer(t, srv)

	// Step 3. A third start with nothing new is a no-op.
	srv = startServer(t, opts)
	requireSearchAttributes(t, dial(t, srv), "keyturn", keyturnAttributes())
	stopServer(t, srv)

	// Step 4. Changing an attribute's type is refused with a clear error.
	opts.SearchAttributes = map[string]enums.IndexedValueType{"KeyturnKind": enums.INDEXED_VALUE_TYPE_TEXT}
	opts.Logger = testLogger(t)
	_, err := Start(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "KeyturnKind is") {
		t.Fatalf("Start with a changed attribute type: err = %v, want a type conflict", err)
	}
	t.Logf("changed attribute type refused: %v", err)
}

func TestWebUIServesHTML(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Options{FrontendAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0"})
	if !strings.HasPrefix(srv.UIURL(), "http://127.0.0.1:") {
		t.Fatalf("UIURL = %q", srv.UIURL())
	}
	httpClient := &http.Client{Timeout: 10 * time.Second}
	resp, err := httpClient.Get(srv.UIURL() + "/")
	if err != nil {
		t.Fatalf("GET UI root: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read UI root: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET UI root: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("UI root is not an HTML page: %.200s", body)
	}
}

func TestTakenFrontendPortIsReported(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	_, err = Start(context.Background(), Options{FrontendAddr: l.Addr().String(), DisableUI: true})
	var inUse *AddrInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("Start on a taken port: err = %v, want *AddrInUseError", err)
	}
	want := l.Addr().String() + " is in use: is another keyturn dev or temporal server running? use --temporal-port"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestOptionsAreValidatedTogether(t *testing.T) {
	t.Parallel()
	_, err := Options{
		FrontendAddr:    "example.com:7233",
		UIAddr:          "127.0.0.1:99999",
		ExtraNamespaces: []string{"default", ""},
		SearchAttributes: map[string]enums.IndexedValueType{
			"WorkflowId":  enums.INDEXED_VALUE_TYPE_KEYWORD,
			"KeyturnKind": enums.INDEXED_VALUE_TYPE_UNSPECIFIED,
		},
	}.resolve()
	if err == nil {
		t.Fatal("resolve accepted invalid options")
	}
	for _, want := range []string{"frontend address", "UI address", `extra namespace "default"`, `extra namespace ""`, "WorkflowId", "KeyturnKind"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// A port taken between the check and the server's own bind makes the server
// log at Fatal level; Start must turn that into an error, not exit the test
// binary. Not parallel: it replaces internalPorts.
func TestPortLostToARaceIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	saved := internalPorts
	t.Cleanup(func() { internalPorts = saved })
	internalPorts = func() ([]int, error) {
		ports, err := saved()
		if err != nil {
			return nil, err
		}
		ports[0] = taken // history
		return ports, nil
	}

	_, err = Start(context.Background(), Options{FrontendAddr: "127.0.0.1:0", DisableUI: true, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start with the history port taken: err = %v, want the bind failure", err)
	}
	t.Logf("lost port reported: %v", err)
}
