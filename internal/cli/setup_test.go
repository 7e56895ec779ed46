package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// refusing dials srv through an interceptor that answers the operator service's
// ListSearchAttributes with code, as a cluster does that denies this identity the call.
func refusing(t *testing.T, addr, namespace string, code codes.Code) connection {
	t.Helper()
	deny := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/ListSearchAttributes") {
			return status.Error(code, "refused by the test's interceptor")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace,
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(deny)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return connection{Client: c, Address: addr, Namespace: namespace}
}

// TestWorkerCheckWhenTheClusterRefusesIt: a cluster that denies this identity the check
// (permission denied, or an API it does not offer) gets a warning and the worker starts;
// one that fails it otherwise stops the worker with the error.
func TestWorkerCheckWhenTheClusterRefusesIt(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := testenv.Temporal(t, logger)
	ctx := context.Background()
	for _, code := range []codes.Code{codes.PermissionDenied, codes.Unimplemented} {
		var logs testenv.SyncBuffer
		err := checkNamespace(ctx, refusing(t, srv.FrontendAddr(), srv.Namespace(), code), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Errorf("%s: the worker would not start: %v", code, err)
		}
		if !strings.Contains(logs.String(), "could not check the namespace's search attributes") || !strings.Contains(logs.String(), "keyturn setup --check") {
			t.Errorf("%s: no warning that the check did not run:\n%s", code, logs.String())
		}
	}
	var logs testenv.SyncBuffer
	err := checkNamespace(ctx, refusing(t, srv.FrontendAddr(), srv.Namespace(), codes.Unavailable), slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil || !strings.Contains(err.Error(), "list the search attributes") {
		t.Errorf("an unavailable cluster: %v, want the worker stopped with the error", err)
	}
	// And a cluster that answers: the namespace is ready, nothing is logged.
	logs = testenv.SyncBuffer{}
	c := testenv.Client(t, srv, logger, nil)
	if err := checkNamespace(ctx, connection{Client: c, Address: srv.FrontendAddr(), Namespace: srv.Namespace()}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil || logs.String() != "" {
		t.Errorf("a ready namespace: %v, logs %q", err, logs.String())
	}
}
