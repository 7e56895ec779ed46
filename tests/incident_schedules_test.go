package tests

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestIncidentPausesOnlyWhatItOwns: schedules created by an apply just before an incident
// are paused all the same (they are addressed by ID, never listed; more than 20 secrets,
// where the list was used before); a schedule an operator paused beforehand keeps its
// pause and note; the CLI names what the incident paused and prints the command that
// resumes it, and that command, like --resume-schedules, resumes only schedules still
// paused with the incident's note.
func TestIncidentPausesOnlyWhatItOwns(t *testing.T) {
	var secrets []demo.Secret
	var ids []secret.ID
	for i := range 22 {
		role := fmt.Sprintf("s%02d", i)
		secrets = append(secrets, demo.Secret{ID: secret.ID("e2e/" + role), Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: role}})
		ids = append(ids, secret.ID("e2e/"+role))
	}
	env := testenv.New(t, testenv.Options{Secrets: secrets, NoWorker: true})
	env.Schedules = schedules.Pauser{Client: env.Client}
	env.StartWorker(t)
	original, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	// First only e2e/s01 has a schedule, which an operator pauses for their own reason.
	one := strings.Replace(string(original), "  - id: e2e/s01\n    kind: postgres\n", "  - id: e2e/s01\n    kind: postgres\n    schedule: \"@daily\"\n    timezone: UTC\n", 1)
	if err := os.WriteFile(env.InventoryPath, []byte(one), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := keyturn(t, env, "apply", "--yes"); code != 0 || !strings.Contains(out, "keyturn/e2e/s01") {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "schedules", "pause", "e2e/s01", "--note", "db migration"); code != 0 {
		t.Fatalf("pause exited %d:\n%s", code, out)
	}
	// Then every secret gets one, created right before the incident starts.
	scheduleInventory(t, env, string(original), "@daily", "UTC")
	if code, out := keyturn(t, env, "apply", "--yes"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	code, out := keyturn(t, env, "incident", "start", "--id", "sched-1", "--select", "prefix=e2e/", "--mode", "rotate", "--reason", "drill", "--yes", "--progress-every", "100ms")
	if code != 0 || !strings.Contains(out, "22/22 done") {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"schedules paused by the incident: keyturn/e2e/s00, keyturn/e2e/s02,",
		"keyturn/e2e/s21\n",
		"paused before the incident, for another reason, left as they are: keyturn/e2e/s01\n",
		"schedules resume --incident sched-1\n",
		"--address " + env.Server.FrontendAddr(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("incident output lacks %q:\n%s", want, out)
		}
	}
	state := func(id secret.ID) (bool, string) {
		t.Helper()
		st, err := schedules.Get(context.Background(), env.Client, schedules.CronScheduleID(id))
		if err != nil {
			t.Fatal(err)
		}
		return st.Paused, st.Note
	}
	for _, id := range ids {
		paused, note := state(id)
		wantNote := "incident sched-1"
		if id == "e2e/s01" {
			wantNote = "db migration"
		}
		if !paused || !strings.Contains(note, wantNote) {
			t.Errorf("%s: paused %v with note %q during the incident, want paused with %q", id, paused, note, wantNote)
		}
	}

	// Someone pauses s05 again for their own reason; the printed command leaves it and s01.
	if code, out := keyturn(t, env, "schedules", "pause", "e2e/s05", "--note", "keep off"); code != 0 {
		t.Fatalf("pause exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "schedules", "resume", "--incident", "sched-1")
	if code != 0 || !strings.Contains(out, "resumed keyturn/e2e/s21") || !strings.Contains(out, "left keyturn/e2e/s05 paused") || !strings.Contains(out, "left keyturn/e2e/s01 paused: it was paused before the incident") {
		t.Fatalf("resume --incident exited %d:\n%s", code, out)
	}
	operatorPaused := map[secret.ID]string{"e2e/s01": "db migration", "e2e/s05": "keep off"}
	check := func(when string) {
		t.Helper()
		for _, id := range ids {
			paused, note := state(id)
			if want, ok := operatorPaused[id]; ok {
				if !paused || !strings.Contains(note, want) {
					t.Errorf("%s %s: paused %v with note %q, want still paused with %q", when, id, paused, note, want)
				}
			} else if paused {
				t.Errorf("%s %s: still paused (%q)", when, id, note)
			}
		}
	}
	check("after resume --incident")

	// --resume-schedules at the end of an incident resumes the same way.
	code, out = keyturn(t, env, "incident", "start", "--id", "sched-2", "--select", "prefix=e2e/", "--mode", "rotate", "--reason", "drill", "--yes", "--resume-schedules", "--progress-every", "100ms")
	if code != 0 || !strings.Contains(out, "schedules resumed: keyturn/e2e/s00,") || strings.Contains(out, "schedules resume --incident") {
		t.Fatalf("incident with --resume-schedules exited %d:\n%s", code, out)
	}
	check("after --resume-schedules")

	// A report that lists only some of the schedules its incident paused (a scope larger
	// than a report lists): resume --incident asks every schedule of the incident's scope
	// and resumes those still paused with its note. The ended incident is a stand-in that
	// returns such a report; the schedules are real.
	const note = "incident cut-1 (oncall): leak"
	var mine []secret.ID
	for _, id := range ids {
		if _, ok := operatorPaused[id]; !ok {
			mine = append(mine, id)
		}
	}
	if _, err := schedules.Pause(context.Background(), env.Client, mine, note); err != nil {
		t.Fatal(err)
	}
	endStandInIncident(t, env, workflows.IncidentReport{
		IncidentID: "cut-1", Mode: workflows.ModeContain, Selector: "prefix=e2e/",
		Schedules: workflows.PausedSchedules{Note: note, Paused: []string{schedules.CronScheduleID(mine[0])}, PausedCount: len(mine)},
	})
	code, out = keyturn(t, env, "schedules", "resume", "--incident", "cut-1")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("incident cut-1 paused %d schedules and its report lists 1: resuming every schedule of its scope (prefix=e2e/", len(mine))) ||
		!strings.Contains(out, "resumed "+schedules.CronScheduleID(mine[len(mine)-1])) || !strings.Contains(out, "2 schedules of the scope are not paused with the incident's note") {
		t.Fatalf("resume --incident of a cut report exited %d:\n%s", code, out)
	}
	check("after resume --incident of a cut report")
}

// endStandInIncident runs, to its end, a workflow with the ID of incident rep.IncidentID
// that returns rep: what the CLI reads of an ended incident, for a report a real one
// would need thousands of secrets to write.
func endStandInIncident(t *testing.T, env *testenv.Env, rep workflows.IncidentReport) {
	t.Helper()
	const queue = "stand-in-incident"
	w := sdkworker.New(env.Client, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context) (workflows.IncidentReport, error) { return rep, nil }, workflow.RegisterOptions{Name: "StandInIncident"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(rep.IncidentID), TaskQueue: queue}, "StandInIncident")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
