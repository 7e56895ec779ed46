package temporalpg

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/keyturn/keyturn/internal/setup"
	"github.com/keyturn/keyturn/workflows"
)

// TestStartPreparesTheNamespaces: the server answers, and both namespaces hold Keyturn's
// search attributes, checked the way the worker checks at start.
func TestStartPreparesTheNamespaces(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	s := Start(t, logger, "team")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range []string{s.Namespace(), "team"} {
		c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: ns, Logger: log.NewStructuredLogger(logger)})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := setup.Check(ctx, c, s.FrontendAddr(), ns, workflows.SearchAttributes())
		c.Close()
		if err != nil || !rep.Ready() {
			t.Fatalf("namespace %s: ready %v, %v", ns, rep.Ready(), err)
		}
	}
}
