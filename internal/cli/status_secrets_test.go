package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestSecretColumns: the AGE column tells a secret never rotated from one whose current
// version is gone and from one whose age the store does not record; the REVOKE column
// says which revoke is outstanding, a failed one included.
func TestSecretColumns(t *testing.T) {
	one, zero := 1, 0
	no := false
	for _, c := range []struct {
		name        string
		s           secretstate.Secret
		age, revoke string
	}{
		{"never rotated", secretstate.Secret{Overdue: &no, RevokesOutstanding: &zero}, "never rotated", "-"},
		{"versions, none current", secretstate.Secret{Versions: 2, RevokesOutstanding: &one, RevokeState: secretstate.RollbackRetrying}, "no current version", "rollback retrying"},
		{"no creation time", secretstate.Secret{Current: &secret.Version{Number: 3}, Versions: 1, OverdueReason: "age unknown: the store records no creation time for version 3", RevokesOutstanding: &one, RevokeState: secretstate.RevokeFailed}, "unknown", "failed"},
		{"store unread", secretstate.Secret{StoreError: "down", RevokesOutstanding: &one, RevokeState: secretstate.RevokeRetrying}, "?", "retrying"},
		{"temporal unread", secretstate.Secret{RotationError: "down"}, "never rotated", "?"},
		{"gate held", secretstate.Secret{Kind: "postgres", RevokesOutstanding: &one, RevokeState: secretstate.RevokeHeld, RevokeGate: &workflows.RevokeGateStatus{State: workflows.GateHeld,
			Uses: []rotators.Use{{User: "app_b", Application: "orders-api", Client: "10.0.0.5:41000", Since: time.Date(2026, 12, 3, 12, 1, 5, 0, time.UTC)}, {User: "app_b"}}}},
			"never rotated", "held: 2 sessions (app_b as orders-api from 10.0.0.5:41000 since 12:01:05Z, and 1 more)"},
		{"gate waiting, check failing", secretstate.Secret{Kind: "awsiam", RevokesOutstanding: &one, RevokeState: secretstate.RevokeWaiting, RevokeGate: &workflows.RevokeGateStatus{State: workflows.GateWaiting, LastError: "throttled"}},
			"never rotated", "waiting: use unknown, the last check failed"},
		{"gate not asked", secretstate.Secret{RevokesOutstanding: &one, RevokeState: secretstate.RevokeWaiting}, "never rotated", "waiting"},
	} {
		if got := age(c.s); got != c.age {
			t.Errorf("%s: AGE %q, want %q", c.name, got, c.age)
		}
		if got := revoke(c.s); got != c.revoke {
			t.Errorf("%s: REVOKE %q, want %q", c.name, got, c.revoke)
		}
	}
	undated := secretstate.Secret{Current: &secret.Version{Number: 3}, OverdueReason: "age unknown: the store records no creation time for version 3", StoreError: ""}
	if u := unknowns(undated); len(u) != 1 || !strings.Contains(u[0], "no creation time") {
		t.Errorf("an unknown age is listed with its reason: %v", u)
	}
}

// TestSecretStateShowsConsumers: `keyturn status <id>` names the owner, the sensitivity
// and every consumer with its refresh, and its JSON carries them; the table has a
// SENSITIVITY column.
func TestSecretStateShowsConsumers(t *testing.T) {
	zero := 0
	no := false
	s := secretstate.Secret{ID: "prod/orders-db", Kind: "postgres", Owner: "payments", Sensitivity: "critical",
		Consumers: []secretstate.Consumer{
			{Name: "orders-api", Refresh: secretstate.Seconds(5 * time.Minute)},
			{Name: "nightly-report", Refresh: secretstate.Seconds(inventory.Day)},
		},
		Overdue: &no, RevokesOutstanding: &zero}
	var b strings.Builder
	printSecretState(&b, s)
	for _, want := range []string{
		"secret:   prod/orders-db (postgres, owner payments, sensitivity critical)\n",
		"consumer: orders-api, re-reads every 5m\n",
		"consumer: nightly-report, re-reads every 1d\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("one-secret view lacks %q:\n%s", want, b.String())
		}
	}

	b.Reset()
	printSecretState(&b, secretstate.Secret{ID: "a/b", Kind: "postgres", Overdue: &no, RevokesOutstanding: &zero})
	if !strings.Contains(b.String(), "secret:   a/b (postgres)\nconsumer: none listed in the inventory\n") {
		t.Errorf("a secret without owner, sensitivity or consumers:\n%s", b.String())
	}

	b.Reset()
	if err := writeJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"owner": "payments"`, `"sensitivity": "critical"`, `"name": "orders-api"`, `"refreshSeconds": 300`, `"refreshSeconds": 86400`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}

	b.Reset()
	if err := printSecrets(&b, secretstate.Observation{Secrets: []secretstate.Secret{s}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if f := strings.Fields(lines[0]); f[len(f)-1] != "SENSITIVITY" {
		t.Errorf("the table's last column is %q, want SENSITIVITY:\n%s", f[len(f)-1], b.String())
	}
	if f := strings.Fields(lines[1]); f[0] != "prod/orders-db" || f[2] != "payments" || f[len(f)-1] != "critical" {
		t.Errorf("row %q: want owner payments and sensitivity critical", lines[1])
	}
}
