package schedules_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/schedules"
)

// The incident playbook's activities take a SchedulePauser; Pauser is Keyturn's.
var _ activities.SchedulePauser = schedules.Pauser{}

// server is an embedded Temporal server and a client that encrypts payloads as
// production does, so the tests prove that schedules written in plain JSON work beside
// the codec.
type server struct {
	c         client.Client
	namespace string
}

func startServer(t *testing.T) server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := testenv.Temporal(t, logger)
	key := make([]byte, codec.KeySize)
	_, _ = rand.Read(key)
	cd, err := codec.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return server{c: testenv.Client(t, srv, logger, cd), namespace: srv.Namespace()}
}

// testCatchup is the catch-up window of the tests' sources (the inventory's default).
const testCatchup = 15 * time.Minute

// inventoryOf is a source of the given secrets, as an inventory file would give them.
func inventoryOf(secrets ...schedules.SourceSecret) schedules.Source {
	return schedules.Source{Path: "inventory.yaml", CatchupWindow: testCatchup, Secrets: secrets}
}

func (s server) plan(t *testing.T, inv schedules.Source) schedules.Changes {
	t.Helper()
	plan, err := schedules.Plan(context.Background(), s.c, s.namespace, inv)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return plan
}

// apply plans and applies, and returns the plan it applied.
func (s server) apply(t *testing.T, inv schedules.Source) schedules.Changes {
	t.Helper()
	plan := s.plan(t, inv)
	if err := schedules.Apply(context.Background(), s.c, s.namespace, plan); err != nil {
		t.Fatalf("apply: %v\nplan:\n%s", err, render(plan))
	}
	return plan
}

func (s server) get(t *testing.T, scheduleID string) schedules.Status {
	t.Helper()
	st, err := schedules.Get(context.Background(), s.c, scheduleID)
	if err != nil {
		t.Fatalf("get %s: %v", scheduleID, err)
	}
	return st
}

// listed waits until Temporal's schedule list, which Plan reads to find schedules to
// delete and which lags behind creation, shows exactly the given count of Keyturn's.
func (s server) listed(t *testing.T, n int) []schedules.Status {
	t.Helper()
	var got []schedules.Status
	eventually(t, func() bool {
		var err error
		got, err = schedules.List(context.Background(), s.c)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		return len(got) == n
	}, "the schedule list to show %d schedules", n)
	return got
}

// byID finds a change of a plan.
func byID(plan schedules.Changes, id string) (schedules.Change, bool) {
	for _, c := range plan {
		if c.ScheduleID == id {
			return c, true
		}
	}
	return schedules.Change{}, false
}

func render(plan schedules.Changes) string {
	out := ""
	for _, c := range plan {
		out += c.String() + "\n"
	}
	return out
}

// eventually polls cond until it holds; it fails the test after a minute, which only a
// broken server takes.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for "+format, args...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
