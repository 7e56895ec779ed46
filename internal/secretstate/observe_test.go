package secretstate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/internal/harness/vaulttest"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/schedsource"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
	"github.com/keyturn/keyturn/workflows"
)

// inventoryText has a secret for each case the observation tells apart.
const inventoryText = `version: 1
secrets:
  - id: files/old
    kind: postgres
    owner: payments
    sensitivity: high
    consumers: [{name: orders-api, refresh: 5m}]
    grace: 1h
    max_age: 1h
    postgres: {host: localhost, sslmode: disable, database: d, role: a, admin: {username: k, password: "env:PW"}}
  - id: files/fresh
    kind: postgres
    schedule: "0 3 * * 1"
    postgres: {host: localhost, sslmode: disable, database: d, role: b, admin: {username: k, password: "env:PW"}}
  - id: files/never
    kind: postgres
    postgres: {host: localhost, sslmode: disable, database: d, role: c, admin: {username: k, password: "env:PW"}}
  - id: files/tampered
    kind: postgres
    max_age: 30d
    postgres: {host: localhost, sslmode: disable, database: d, role: e, admin: {username: k, password: "env:PW"}}
  - id: vault/kept
    kind: postgres
    store: {type: vault}
    postgres: {host: localhost, sslmode: disable, database: d, role: f, admin: {username: k, password: "env:PW"}}
  - id: files/gaveup
    kind: postgres
    postgres: {host: localhost, sslmode: disable, database: d, role: g, admin: {username: k, password: "env:PW"}}
  - id: files/staged
    kind: postgres
    postgres: {host: localhost, sslmode: disable, database: d, role: h, admin: {username: k, password: "env:PW"}}
  - id: files/undated
    kind: postgres
    max_age: 30d
    postgres: {host: localhost, sslmode: disable, database: d, role: i, admin: {username: k, password: "env:PW"}}
  - id: files/hung
    kind: postgres
    postgres: {host: localhost, sslmode: disable, database: d, role: j, admin: {username: k, password: "env:PW"}}
  - id: certs/web
    kind: localca
    localca: {ca_cert: "file:ca#c", ca_key: "file:ca#k", crl_file: ca.crl, common_name: web.localhost, ttl: 30d}
  - id: certs/api
    kind: localca
    localca: {ca_cert: "file:ca#c", ca_key: "file:ca#k", crl_file: ca.crl, common_name: api.localhost, ttl: 30d}
`

// canary is material put into the stores; no observation may ever hold it.
const canary = "Canary-secretstate-7c1e-DoNotLeak"

// TestObserve reads every kind of state from real servers: versions from a file store
// (on a clock two hours ahead, so one secret is old) and from Vault, a document that was
// tampered with, rotations and an incident from real workflow runs in an embedded
// Temporal server, schedules applied there (a cron one, a certificate's renewal check)
// and one that never was.
func TestObserve(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	inv := loadInventory(t, dir)

	// Stores: versions written two hours before the observation's clock, and now.
	now := time.Now().UTC()
	storeNow := now.Add(-2 * time.Hour)
	store, err := file.OpenWithOptions(filepath.Join(dir, "store"), file.Options{Now: func() time.Time { return storeNow }})
	if err != nil {
		t.Fatal(err)
	}
	material := secret.Material{"password": secret.NewSensitive(canary)}
	put(t, store, "files/old", material)
	put(t, store, "files/tampered", material)
	storeNow = now.Add(-time.Minute)
	fresh := put(t, store, "files/fresh", material)
	// A certificate valid for 30 days from a day ago: due for renewal at 2/3 of that.
	notBefore := now.Add(-24 * time.Hour).Truncate(time.Second)
	if _, err := store.Put(ctx, "certs/api", material, map[string]string{
		"not_before": notBefore.Format(time.RFC3339), "not_after": notBefore.Add(30 * 24 * time.Hour).Format(time.RFC3339),
	}); err != nil {
		t.Fatal(err)
	}
	tamper(t, filepath.Join(dir, "store", "secrets", "files%2Ftampered.json"))
	// A version staged and never promoted: the store holds a version, none current.
	if _, err := store.StagePending(ctx, storesRequest("files/staged", material)); err != nil {
		t.Fatal(err)
	}
	put(t, store, "files/undated", material)

	vault := vaulttest.Start(t, vaulttest.Options{})
	openVault := func(ctx context.Context, mount string) (binding.FieldStore, error) {
		s, err := vaultkv.New(ctx, vaultkv.Config{Address: vault.Addr, Mount: mount, Auth: vaultkv.Auth{Token: secret.NewSensitive(vault.Token)}})
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		return s, err
	}
	vs, err := openVault(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	v, err := vs.StagePending(ctx, storesRequest("vault/kept", material))
	if err != nil {
		t.Fatal(err)
	}
	if err := vs.Promote(ctx, "vault/kept", v.Token); err != nil {
		t.Fatal(err)
	}

	// Temporal: a rotation of files/fresh retrying a revoke, a finished one of files/old,
	// a running incident, and files/fresh's schedule applied (certs/web's renewal check
	// is not).
	srv := testenv.Temporal(t, logger)
	c := testenv.Client(t, srv, logger, nil)
	w := sdkworker.New(c, "secretstate-test", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(stubRotate, workflow.RegisterOptions{Name: workflows.RotateWorkflowName})
	w.RegisterWorkflowWithOptions(stubIncident, workflow.RegisterOptions{Name: workflows.IncidentWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	start := func(id, name, arg string) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "secretstate-test"}, name, arg)
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	start(workflows.RotateWorkflowID("files/fresh"), workflows.RotateWorkflowName, workflows.OutcomeRevokeOutstanding)
	if err := start(workflows.RotateWorkflowID("files/gaveup"), workflows.RotateWorkflowName, workflows.OutcomeRevokeFailed).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	start(workflows.RotateWorkflowID("files/hung"), workflows.RotateWorkflowName, workflows.OutcomeRollbackOutstanding)
	if err := start(workflows.RotateWorkflowID("files/old"), workflows.RotateWorkflowName, workflows.OutcomeRotated).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	start(workflows.IncidentWorkflowID("leak-7"), workflows.IncidentWorkflowName, "leak-7")
	plan, err := schedules.Plan(ctx, c, srv.Namespace(), schedsource.From(inventoryWith(inv, "files/fresh", "certs/api")))
	if err != nil {
		t.Fatal(err)
	}
	if err := schedules.Apply(ctx, c, srv.Namespace(), plan); err != nil {
		t.Fatal(err)
	}

	// files/undated's store records no creation time; files/hung's store never answers.
	odd := oddStores{Stores: binding.New(inv, binding.Backends{File: store, Vault: openVault}), undated: "files/undated", hung: "files/hung"}
	o := secretstate.Observer{Inventory: inv, Stores: odd, Temporal: c, Now: func() time.Time { return now }, ReadTimeout: 3 * time.Second}
	var obs secretstate.Observation
	waitFor(t, "the running incident and the outstanding revoke to show", func() bool {
		obs = o.Observe(ctx)
		s := byID(obs, "files/fresh")
		h := byID(obs, "files/hung")
		return len(obs.Incidents) == 1 && s.LastRotation != nil && s.LastRotation.Outcome == workflows.OutcomeRevokeOutstanding &&
			h.LastRotation != nil && h.LastRotation.Outcome == workflows.OutcomeRollbackOutstanding
	})
	if !obs.At.Equal(now) || len(obs.Secrets) != len(inv.Secrets) {
		t.Fatalf("observation at %v of %d secrets, want %v and %d", obs.At, len(obs.Secrets), now, len(inv.Secrets))
	}

	old := byID(obs, "files/old")
	if old.Age == nil || old.Age.Duration() != 2*time.Hour || old.MaxAge == nil || old.MaxAge.Duration() != time.Hour || old.MaxAgeFrom != inventory.PolicyMaxAge ||
		!old.IsOverdue() || old.OverdueReason != "age 2h is over the maximum 1h (max_age)" || old.Owner != "payments" ||
		old.Sensitivity != "high" || len(old.Consumers) != 1 || old.Consumers[0] != (secretstate.Consumer{Name: "orders-api", Refresh: secretstate.Seconds(5 * time.Minute)}) {
		t.Errorf("files/old: want 2h old, over its max_age 1h, owner payments, sensitivity high, consumer orders-api every 5m: %s", dump(old))
	}
	if r := old.LastRotation; r == nil || r.Status != "completed" || r.Result() != workflows.OutcomeRotated || old.RevokesOutstanding == nil || *old.RevokesOutstanding != 0 {
		t.Errorf("files/old: want its finished rotation and no outstanding revoke: %s", dump(old))
	}

	fr := byID(obs, "files/fresh")
	if fr.Age == nil || fr.Age.Duration() != time.Minute || fr.IsOverdue() || fr.Overdue == nil || fr.Current == nil || fr.Current.Token != fresh.Token ||
		fr.MaxAgeFrom != inventory.PolicySchedule || fr.MaxAge.Duration() != 14*inventory.Day {
		t.Errorf("files/fresh: want a minute old, not overdue, max age 14d from its weekly schedule: %s", dump(fr))
	}
	if fr.RevokesOutstanding == nil || *fr.RevokesOutstanding != 1 || fr.RevokeState != secretstate.RevokeRetrying || fr.LastRotation.Status != secretstate.StatusRunning {
		t.Errorf("files/fresh: want one outstanding revoke: %s", dump(fr))
	}
	if fr.NextRun == nil || fr.NextRun.Weekday() != time.Monday || !fr.NextRun.After(now) || len(fr.Schedules) != 1 || fr.Schedules[0].ID != "keyturn/files/fresh" {
		t.Errorf("files/fresh: want its next run next Monday from its applied schedule: %s", dump(fr))
	}

	never := byID(obs, "files/never")
	if !never.IsOverdue() || never.Age != nil || never.Current != nil || never.MaxAge != nil || never.OverdueReason != "no current version: never rotated" || never.StoreError != "" {
		t.Errorf("files/never: a secret never rotated is overdue, even without a policy: %s", dump(never))
	}
	if never.LastRotation != nil || never.RevokesOutstanding == nil || *never.RevokesOutstanding != 0 || never.NextRun != nil || len(never.Schedules) != 0 {
		t.Errorf("files/never: no rotation, no schedule: %s", dump(never))
	}

	gaveUp := byID(obs, "files/gaveup")
	if gaveUp.RevokesOutstanding == nil || *gaveUp.RevokesOutstanding != 1 || gaveUp.RevokeState != secretstate.RevokeFailed || gaveUp.LastRotation == nil || gaveUp.LastRotation.Status != "completed" {
		t.Errorf("files/gaveup: a rotation that ended revoke_failed leaves a revoke outstanding, failed: %s", dump(gaveUp))
	}
	if old.RevokeState != "" || never.RevokeState != "" {
		t.Errorf("nothing outstanding: %q %q", old.RevokeState, never.RevokeState)
	}

	staged := byID(obs, "files/staged")
	if !staged.IsOverdue() || staged.Current != nil || staged.Versions != 1 || staged.OverdueReason != "no current version (the store holds 1 earlier version(s))" {
		t.Errorf("files/staged: a store with versions but none current is overdue, not 'never rotated': %s", dump(staged))
	}
	if never.Versions != 0 {
		t.Errorf("files/never: no version at all: %s", dump(never))
	}

	undated := byID(obs, "files/undated")
	if undated.Current == nil || undated.Age != nil || undated.Overdue != nil || !undated.AgeUnknown() || undated.StoreError != "" ||
		!strings.Contains(undated.OverdueReason, "records no creation time") {
		t.Errorf("files/undated: a version without a creation time has no age and no verdict, with the reason: %s", dump(undated))
	}

	hung := byID(obs, "files/hung")
	if hung.StoreError == "" || hung.Overdue != nil || hung.RotationError != "" || hung.RevokeState != secretstate.RollbackRetrying || hung.ScheduleError != "" {
		t.Errorf("files/hung: a store that hangs leaves the age unknown, and the rotation readable on its own timeout: %s", dump(hung))
	}

	bad := byID(obs, "files/tampered")
	if bad.Overdue != nil || bad.Age != nil || bad.Current != nil || !strings.Contains(bad.StoreError, "read versions from the file store") || bad.MaxAge == nil {
		t.Errorf("files/tampered: a store that refuses the read leaves age and overdue unknown, says why, keeps the policy: %s", dump(bad))
	}

	kept := byID(obs, "vault/kept")
	if kept.Current == nil || kept.Current.Token != v.Token || kept.Age == nil || kept.Age.Duration() > time.Hour || kept.IsOverdue() || kept.Overdue == nil || kept.MaxAge != nil {
		t.Errorf("vault/kept: want its current version from Vault, no policy, not overdue: %s", dump(kept))
	}

	cert := byID(obs, "certs/web")
	if len(cert.Schedules) != 1 || !cert.Schedules[0].Missing || !cert.Schedules[0].RenewalCheck || cert.NextRun != nil || cert.MaxAgeFrom != inventory.PolicyCertificate || cert.ScheduleError != "" {
		t.Errorf("certs/web: its renewal check was never applied, so no next run: %s", dump(cert))
	}

	api := byID(obs, "certs/api")
	if due := notBefore.Add(20 * 24 * time.Hour); api.NextRun == nil || !api.NextRun.Equal(due) || len(api.Schedules) != 1 || api.Schedules[0].NextRun == nil {
		t.Errorf("certs/api: its renewal check runs hourly, so its next rotation is its renewal point %v: %s", due, dump(api))
	}

	if obs.IncidentsError != "" || obs.Incidents[0].ID != "leak-7" || obs.Incidents[0].RunID == "" {
		t.Errorf("incidents: want leak-7 running: %+v %q", obs.Incidents, obs.IncidentsError)
	}

	// One secret alone, and no material anywhere.
	one := o.Observe(ctx, "files/old")
	if len(one.Secrets) != 1 || one.Secrets[0].ID != "files/old" || one.Incidents != nil {
		t.Errorf("Observe of one ID: %+v", one)
	}
	js, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), canary) {
		t.Fatal("the observation holds material")
	}
	if !strings.Contains(string(js), `"ageSeconds":7200`) || !strings.Contains(string(js), `"maxAgeSeconds":3600`) {
		t.Errorf("the JSON form counts ages in seconds: %s", js)
	}
}

// TestObserveWithTemporalDown: with the Temporal server stopped, the stores are still read
// and every Temporal fact is unknown with the reason, not "none".
func TestObserveWithTemporalDown(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	inv, store := freshInventory(t)
	srv := testenv.Temporal(t, logger)
	c := testenv.Client(t, srv, logger, nil)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	o := secretstate.Observer{Inventory: inv, Stores: binding.New(inv, binding.Backends{File: store}), Temporal: c, ReadTimeout: 5 * time.Second}
	obs := o.Observe(ctx, "files/fresh", "files/never")
	for _, s := range obs.Secrets {
		if s.RotationError == "" || s.LastRotation != nil || s.RevokesOutstanding != nil {
			t.Errorf("%s: the rotation facts must be unknown, with the reason: %s", s.ID, dump(s))
		}
		if s.Overdue == nil || s.StoreError != "" {
			t.Errorf("%s: the store was readable: %s", s.ID, dump(s))
		}
	}
	if fresh := byID(obs, "files/fresh"); fresh.ScheduleError == "" || fresh.NextRun != nil {
		t.Errorf("files/fresh: its schedule is unknown: %s", dump(fresh))
	}
	if all := o.Observe(ctx); all.IncidentsError == "" || all.Incidents != nil {
		t.Errorf("incidents must be unknown, with the reason: %+v %q", all.Incidents, all.IncidentsError)
	}
}

// oddStores opens the stores of Stores, except two: undated's gives its versions no
// creation time, hung's never answers.
type oddStores struct {
	secretstate.Stores
	undated, hung secret.ID
}

func (o oddStores) Store(ctx context.Context, id secret.ID) (stores.Store, error) {
	if id == o.hung {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s, err := o.Stores.Store(ctx, id)
	if id == o.undated && err == nil {
		s = undatedStore{s}
	}
	return s, err
}

type undatedStore struct{ stores.Store }

func (u undatedStore) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	vs, err := u.Store.ListVersions(ctx, id)
	for i := range vs {
		vs[i].CreatedAt = time.Time{}
	}
	return vs, err
}

// stubRotate stands in for the Rotate workflow as the observation sees it: it sets the
// search attributes the real one sets; with an outstanding outcome it keeps running.
func stubRotate(ctx workflow.Context, outcome string) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchAttrOutcome.ValueSet(outcome), workflows.SearchAttrStep.ValueSet(workflows.StepRevoke)); err != nil {
		return err
	}
	if workflows.IsOutstanding(outcome) {
		workflow.GetSignalChannel(ctx, "never").Receive(ctx, nil)
	}
	return nil
}

// stubIncident stands in for a running incident playbook.
func stubIncident(ctx workflow.Context, id string) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchAttrIncidentID.ValueSet(id)); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "never").Receive(ctx, nil)
	return nil
}

// loadInventory writes inventoryText into dir and loads it.
func loadInventory(t *testing.T, dir string) *inventory.Inventory {
	t.Helper()
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, []byte(inventoryText), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func put(t *testing.T, s *file.Store, id secret.ID, m secret.Material) secret.Version {
	t.Helper()
	v, err := s.Put(context.Background(), id, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tamper edits a version's creation time in a file store document behind the store's
// back, which its MAC then refuses.
func tamper(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["versions"].([]any)[0].(map[string]any)["created_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// inventoryWith is inv with only the secrets named.
func inventoryWith(inv *inventory.Inventory, ids ...secret.ID) *inventory.Inventory {
	out := *inv
	out.Secrets = nil
	for _, s := range inv.Secrets {
		for _, id := range ids {
			if s.ID == id {
				out.Secrets = append(out.Secrets, s)
			}
		}
	}
	return &out
}

func byID(obs secretstate.Observation, id secret.ID) secretstate.Secret {
	for _, s := range obs.Secrets {
		if s.ID == id {
			return s
		}
	}
	return secretstate.Secret{}
}

func dump(s secretstate.Secret) string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func storesRequest(id secret.ID, m secret.Material) stores.StageRequest {
	return stores.StageRequest{SecretID: id, Token: secret.VersionToken("rotate/" + string(id) + "/test-run"), Material: m}
}

// freshInventory loads inventoryText with a file store in a new directory, where
// files/fresh has a current version.
func freshInventory(t *testing.T) (*inventory.Inventory, *file.Store) {
	t.Helper()
	dir := t.TempDir()
	inv := loadInventory(t, dir)
	store, err := file.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, store, "files/fresh", secret.Material{"password": secret.NewSensitive(canary)})
	return inv, store
}
