package tests

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// auditRecords reads the env's whole audit trail and checks it verifies: every chain
// linked, every checkpoint (one is signed now) trusted and matching.
func auditRecords(t *testing.T, env *testenv.Env) []audit.Record {
	t.Helper()
	ctx := context.Background()
	if err := env.Audit.Checkpoint(ctx); err != nil {
		t.Fatalf("sign a checkpoint: %v", err)
	}
	recs, err := env.Audit.Sink.Records(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := env.Audit.Sink.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep := audit.Verify(recs, cps, []ed25519.PublicKey{env.Audit.Signer.Public()}, nil); !rep.OK() || rep.Trusted == 0 {
		t.Fatalf("the audit trail does not verify (%d trusted checkpoints): %v", rep.Trusted, rep.Problems)
	}
	return recs
}

// runEvents counts a run's records as "step event" ("create step.started") and returns
// them in chain order too.
func runEvents(recs []audit.Record, runID string) (map[string]int, []audit.Record) {
	counts := map[string]int{}
	var out []audit.Record
	for _, r := range recs {
		if r.RunID != runID {
			continue
		}
		counts[strings.TrimSpace(r.Step+" "+r.Event)]++
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return counts, out
}

// lastRunID is the run ID of the newest record of a secret's chain.
func lastRunID(t *testing.T, recs []audit.Record, id secret.ID) string {
	t.Helper()
	var last audit.Record
	for _, r := range recs {
		if r.SecretID == id && r.RunID != "" && r.Seq > last.Seq {
			last = r
		}
	}
	if last.RunID == "" {
		t.Fatalf("no audit record of a rotation of %s", id)
	}
	return last.RunID
}

// wantOnce fails unless each event happened exactly once in the run.
func wantOnce(t *testing.T, counts map[string]int, events ...string) {
	t.Helper()
	for _, e := range events {
		if counts[e] != 1 {
			t.Errorf("%q recorded %d times, want exactly once (all: %v)", e, counts[e], counts)
		}
	}
}

// TestAuditTrailOfRotations: a rotation and a rotation that rolls back, through the CLI
// and a real worker, each leave the records an auditor needs, once each: who asked and
// why, every step's start and end, the versions by number and handle, the failure's
// class, the rollback and the outcome. The trail verifies.
func TestAuditTrailOfRotations(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	const id = secret.ID("e2e/app")
	for range 2 {
		if code, out := keyturn(t, env, "rotate", string(id), "--wait", "--reason", "quarterly rotation"); code != 0 {
			t.Fatalf("rotate exited %d:\n%s", code, out)
		}
	}
	recs := auditRecords(t, env)
	counts, run := runEvents(recs, lastRunID(t, recs, id))
	wantOnce(t, counts, "rotation.started", "create step.started", "create step.succeeded", "test step.started", "test step.succeeded",
		"promote step.started", "promote step.succeeded", "revoke step.started", "revoke step.succeeded", "rotation.finished")
	if run[0].Event != audit.EventRotationStarted || run[len(run)-1].Event != audit.EventRotationFinished {
		t.Errorf("the run's records do not begin with rotation.started and end with rotation.finished: %s ... %s", run[0].Event, run[len(run)-1].Event)
	}
	for _, r := range run {
		if r.Actor.Type != audit.ActorOperator || r.Actor.Name == "" || r.Reason != "quarterly rotation" || r.Kind != "postgres" || r.Chain != "secret/"+string(id) {
			t.Errorf("%s %s: actor %s, reason %q, kind %q, chain %s: want the operator, the reason, postgres and the secret's chain", r.Step, r.Event, r.Actor, r.Reason, r.Kind, r.Chain)
		}
		switch {
		case r.Event == audit.EventRotationStarted && r.VersionNumber != 1:
			t.Errorf("rotation.started names version %d as current, want 1", r.VersionNumber)
		case r.Step == "create" && r.Event == audit.EventStepSucceeded && (r.VersionNumber != 2 || r.Handles["role"] == ""):
			t.Errorf("create's success names version %d, handles %v: want version 2 and its role", r.VersionNumber, r.Handles)
		case r.Step == "revoke" && r.Event == audit.EventStepStarted && r.VersionNumber != 1:
			t.Errorf("revoke names version %d, want the previous one, 1", r.VersionNumber)
		case r.Event == audit.EventRotationFinished && r.Outcome != "rotated":
			t.Errorf("rotation.finished says %q, want rotated", r.Outcome)
		}
	}

	// A grace period an operator skips: its start, the operator's skip-grace with their
	// name, and its end, "skipped".
	if code, out := keyturn(t, env, "rotate", string(id), "--grace", "1h"); code != 0 {
		t.Fatalf("rotate --grace 1h exited %d:\n%s", code, out)
	}
	wid := workflows.RotateWorkflowID(id)
	waitFor(t, 30*time.Second, "the rotation's grace period", func() bool {
		v, err := env.Client.QueryWorkflow(context.Background(), wid, "", workflows.QueryStatus)
		var st workflows.RotateStatus
		return err == nil && v.Get(&st) == nil && st.Step == workflows.StepGrace
	})
	if code, out := keyturn(t, env, "skip-grace", string(id)); code != 0 {
		t.Fatalf("skip-grace exited %d:\n%s", code, out)
	}
	if err := env.Client.GetWorkflow(context.Background(), wid, "").Get(context.Background(), nil); err != nil {
		t.Fatalf("the rotation whose grace was skipped: %v", err)
	}
	recs = auditRecords(t, env)
	counts, run = runEvents(recs, lastRunID(t, recs, id))
	wantOnce(t, counts, "grace step.started", "skip-grace operator.action", "grace step.succeeded", "revoke step.succeeded", "rotation.finished")
	for _, r := range run {
		switch {
		case r.Event == audit.EventOperator && (r.Actor.Type != audit.ActorOperator || r.Actor.Name == ""):
			t.Errorf("skip-grace recorded with actor %s, want the operator who sent it", r.Actor)
		case r.Step == workflows.StepGrace && r.Event == audit.EventStepSucceeded && r.Outcome != "skipped":
			t.Errorf("the grace period ended %q, want skipped", r.Outcome)
		}
	}
	checkReplay(t, env, wid, "", "rotate_grace_skipped_audited")

	// A rotation whose test fails: each failed attempt is recorded with its class, then
	// the rollback and the outcome.
	superExec(t, env, "CREATE TABLE audit_only (x int)")
	env.Inventory.Secrets[0].Postgres.CheckQuery = "SELECT count(*) FROM audit_only"
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code == 0 {
		t.Fatalf("a rotation with a failing check query succeeded:\n%s", out)
	}
	recs = auditRecords(t, env)
	counts, run = runEvents(recs, lastRunID(t, recs, id))
	wantOnce(t, counts, "rotation.started", "create step.succeeded", "test step.started", "test step.failed", "rollback step.started", "rollback step.succeeded", "rotation.finished")
	if counts["promote step.started"] != 0 || counts["revoke step.started"] != 0 {
		t.Errorf("a rolled back rotation recorded a promote or a revoke: %v", counts)
	}
	for _, r := range run {
		switch {
		case r.Event == audit.EventStepFailed && (r.ErrorClass != "KeyturnCheckFailed" || r.Attempt != 1):
			t.Errorf("test's failure: class %q attempt %d, want KeyturnCheckFailed on attempt 1", r.ErrorClass, r.Attempt)
		case r.Event == audit.EventRotationFinished && r.Outcome != "rolled_back":
			t.Errorf("rotation.finished says %q, want rolled_back", r.Outcome)
		}
	}
	t.Logf("%d records in %d chain(s); the rolled back run: %v", len(recs), len(chainsOf(recs)), counts)
	checkReplay(t, env, "rotate/"+string(id), "", "rolled_back_audited")
}

func chainsOf(recs []audit.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range recs {
		out[r.Chain] = true
	}
	return out
}

// flakySink fails the appends fail selects, as a trail that is down would.
type flakySink struct {
	audit.Sink
	mu    sync.Mutex
	fail  func(r audit.Record) bool
	count int
}

func (s *flakySink) Append(ctx context.Context, r audit.Record) (audit.Record, bool, error) {
	s.mu.Lock()
	failed := s.fail(r)
	if failed {
		s.count++
	}
	s.mu.Unlock()
	if failed {
		return audit.Record{}, false, errors.New("audit sink down (test)")
	}
	return s.Sink.Append(ctx, r)
}

// TestAuditTrailDown: Keyturn changes nothing it cannot record. A trail that fails twice
// when Create would record its start delays Create (retried) and nothing is recorded
// twice; a trail that is down for good fails the rotation before anything changed, and
// the version in use stays current. An incident contains all the same.
func TestAuditTrailDown(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	const id = secret.ID("e2e/app")
	flaky := &flakySink{Sink: env.Audit.Sink}
	flaky.fail = func(r audit.Record) bool {
		return r.Step == "create" && r.Event == audit.EventStepStarted && flaky.count < 2
	}
	env.Audit = &audit.Log{Sink: flaky, Signer: env.Audit.Signer}
	env.StartWorker(t)
	if code, out := keyturn(t, env, "rotate", string(id), "--wait"); code != 0 {
		t.Fatalf("a rotation whose trail failed twice, then recovered, exited %d:\n%s", code, out)
	}
	recs := auditRecords(t, env)
	counts, _ := runEvents(recs, lastRunID(t, recs, id))
	wantOnce(t, counts, "rotation.started", "create step.started", "create step.succeeded", "rotation.finished")
	if flaky.count != 2 {
		t.Fatalf("the sink failed %d appends, want 2", flaky.count)
	}
	v1, _ := current(t, env, id)

	flaky.fail = func(r audit.Record) bool { return true }
	code, out := keyturn(t, env, "rotate", string(id), "--wait")
	if code == 0 || !strings.Contains(out, "audit trail unavailable") {
		t.Fatalf("a rotation with the trail down exited %d, want a failure naming the trail:\n%s", code, out)
	}
	if v, _ := current(t, env, id); v.Token != v1.Token {
		t.Fatalf("the rotation changed the current version from %d to %d with the trail down", v1.Number, v.Number)
	}
	if _, _, err := env.Store.Read(context.Background(), id, secret.StagePending); err == nil {
		t.Fatal("a pending version was staged with the trail down")
	}

	// An incident does not wait for the trail: the leaked credential is contained (the
	// lost records are logged), though no new version can be made without a record.
	_, m1 := current(t, env, id)
	code, out = keyturn(t, env, "incident", "start", "--id", "trail-down", "--select", "id="+string(id), "--mode", "contain", "--reason", "drill", "--yes", "--progress-every", "100ms")
	if code == 0 || !strings.Contains(out, "1 contained") {
		t.Fatalf("an incident with the trail down exited %d; want its secret contained and its rotation failed:\n%s", code, out)
	}
	if err := login(context.Background(), env, v1.Metadata["role"], m1.Get("password")); err == nil {
		t.Fatal("the incident did not contain the credential while the audit trail was down")
	}
	if !strings.Contains(env.Logs.String(), "audit record not written; the incident goes on without it") {
		t.Error("the worker did not log the containment records it could not write")
	}
}
