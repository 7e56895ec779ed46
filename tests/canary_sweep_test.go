package tests

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/internal/sweep"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/telemetry"
)

// canarySweep runs one secret sweep over the env, as a worker does, for the canary to
// scan its output channels: it returns the /metrics text of the sweep's gauges and the
// JSON and Slack bodies of the secret_overdue events it sends. So that there is an event
// to scan, every secret gets a max_age of 1h and the sweep's clock runs two hours ahead:
// each secret's current version is overdue.
func canarySweep(t *testing.T, env *testenv.Env) (metricsText string, bodies []byte) {
	t.Helper()
	ctx := context.Background()
	inv := *env.Inventory
	inv.Secrets = append([]inventory.Secret(nil), inv.Secrets...)
	for i := range inv.Secrets {
		inv.Secrets[i].MaxAge = time.Hour
	}
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Setup(ctx, telemetry.Options{Registry: reg, Logger: env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	gauges, err := telemetry.NewSecretGauges(tel)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingNotifier{}
	resolver := binding.New(&inv, env.Backends)
	defer func() { _ = resolver.Close() }()
	s := &sweep.Sweep{
		Observer: &secretstate.Observer{Inventory: &inv, Stores: resolver, Temporal: env.Client, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }},
		Gauges:   gauges, Notifier: rec, Logger: env.Logger,
	}
	s.Once(ctx)
	s.Wait()
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	metricsText = scrapeText(t, srv.URL)
	if !strings.Contains(metricsText, `keyturn_secret_age_seconds{`) || !strings.Contains(metricsText, `secret_id="e2e/app"`) {
		t.Fatalf("the sweep exported no age of e2e/app: the scan would prove nothing:\n%.2000s", metricsText)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	named := false
	for _, e := range rec.events {
		named = named || (e.SecretID == "e2e/app" && e.Overdue != nil && e.Overdue.Version != "")
	}
	if !named {
		t.Fatalf("the sweep sent no secret_overdue event naming e2e/app's version: the scan would prove nothing: %+v", rec.events)
	}
	for _, e := range rec.events {
		for _, format := range []string{inventory.NotifyFormatJSON, inventory.NotifyFormatSlack} {
			b, err := notify.Body(format, e)
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(append(bodies, b...), '\n')
		}
	}
	return metricsText, bodies
}

// recordingNotifier keeps the events a sweep would send.
type recordingNotifier struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recordingNotifier) Notify(_ context.Context, e notify.Event) []notify.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}
