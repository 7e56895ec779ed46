package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/schedules"
)

// keyturnExit runs one CLI command like keyturn, but takes the exit code from
// cli.ExitCode, which gives `keyturn diff` its exit code 2 for pending changes.
func keyturnExit(t *testing.T, env *testenv.Env, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	root := cli.NewRoot()
	root.SetArgs(append([]string{"--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(), "-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile}, args...))
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(&out, "keyturn:", err)
	}
	return cli.ExitCode(err), out.String()
}

// scheduleInventory rewrites the env's inventory file with a schedule for every secret,
// or with none when spec is empty.
func scheduleInventory(t *testing.T, env *testenv.Env, original, spec, tz string) {
	t.Helper()
	body := original
	if spec != "" {
		body = strings.ReplaceAll(original, "    kind: postgres\n", fmt.Sprintf("    kind: postgres\n    schedule: %q\n    timezone: %s\n", spec, tz))
	}
	if err := os.WriteFile(env.InventoryPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSchedulesThroughCLI drives diff, apply, list, preview, pause and resume against a
// real server: diff changes nothing and exits 2 while changes are pending, apply asks
// before it acts and converges, a pause survives an apply that changes the spec, and a
// schedule removed from the inventory is deleted.
func TestSchedulesThroughCLI(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	original, err := os.ReadFile(env.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	const id = "keyturn/e2e/app"
	scheduleInventory(t, env, string(original), "0 3 * * 1", "Europe/Berlin")

	list := func() string {
		t.Helper()
		code, out := keyturn(t, env, "schedules", "list")
		if code != 0 {
			t.Fatalf("schedules list exited %d:\n%s", code, out)
		}
		return out
	}
	if out := list(); !strings.Contains(out, "No Keyturn schedules") {
		t.Fatalf("a fresh server has no schedules:\n%s", out)
	}

	code, out := keyturnExit(t, env, "", "diff")
	if code != cli.ExitPending || !strings.Contains(out, "+ create    "+id) || !strings.Contains(out, "Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged.") {
		t.Fatalf("diff with a pending create: exit %d, want %d:\n%s", code, cli.ExitPending, out)
	}
	if out := list(); !strings.Contains(out, "No Keyturn schedules") {
		t.Fatalf("diff must change nothing:\n%s", out)
	}

	code, out = keyturn(t, env, "apply")
	if code != 1 || !strings.Contains(out, "Type yes:") || !strings.Contains(out, "not applied") {
		t.Fatalf("apply without an answer must not apply: exit %d:\n%s", code, out)
	}
	code, out = keyturnIn(t, env, "no\n", "apply")
	if code != 1 || !strings.Contains(out, "not applied") {
		t.Fatalf("apply answered no: exit %d:\n%s", code, out)
	}
	if out := list(); !strings.Contains(out, "No Keyturn schedules") {
		t.Fatalf("a refused apply must change nothing:\n%s", out)
	}
	code, out = keyturnIn(t, env, "yes\n", "apply")
	if code != 0 || !strings.Contains(out, "Applied: 1 created, 0 updated, 0 deleted, 0 unchanged.") {
		t.Fatalf("apply answered yes: exit %d:\n%s", code, out)
	}

	code, out = keyturnExit(t, env, "", "diff")
	if code != 0 || !strings.Contains(out, "= unchanged "+id) || !strings.Contains(out, "In sync") {
		t.Fatalf("diff after apply: exit %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "apply", "--yes")
	if code != 0 || !strings.Contains(out, "In sync: nothing to apply.") {
		t.Fatalf("a second apply must have nothing to do: exit %d:\n%s", code, out)
	}
	if out := list(); !strings.Contains(out, id) || !strings.Contains(out, "0 3 * * 1") || !strings.Contains(out, "Europe/Berlin") {
		t.Fatalf("list after apply:\n%s", out)
	}

	// The preview's two sources agree, run for run.
	code, out = keyturn(t, env, "schedules", "preview", "e2e/app", "-n", "3")
	if code != 0 {
		t.Fatalf("preview exited %d:\n%s", code, out)
	}
	inventoryPart, temporalPart, ok := strings.Cut(out, "in Temporal")
	if !ok || strings.Count(inventoryPart, "Mon 20") != 3 || strings.Count(temporalPart, "Mon 20") != 3 {
		t.Fatalf("preview must show 3 runs from each source:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(inventoryPart), "\n")[2:] {
		if !strings.Contains(temporalPart, strings.TrimSpace(line)) {
			t.Fatalf("Temporal lacks the inventory's run %q:\n%s", line, out)
		}
	}

	code, out = keyturn(t, env, "schedules", "pause", "e2e/app", "--note", "INC-9 leaked key")
	if code != 0 || !strings.Contains(out, "paused "+id+": INC-9 leaked key") {
		t.Fatalf("pause exited %d:\n%s", code, out)
	}
	scheduleInventory(t, env, string(original), "30 4 * * 2", "Europe/Berlin")
	code, out = keyturnExit(t, env, "", "diff")
	if code != cli.ExitPending || !strings.Contains(out, `spec changed from "0 3 * * 1" to "30 4 * * 2"`) || !strings.Contains(out, "stays paused") {
		t.Fatalf("diff of a changed spec: exit %d:\n%s", code, out)
	}
	if code, out = keyturn(t, env, "apply", "--yes"); code != 0 {
		t.Fatalf("apply of a changed spec exited %d:\n%s", code, out)
	}
	if out := list(); !strings.Contains(out, "30 4 * * 2") || !strings.Contains(out, "yes: INC-9 leaked key") {
		t.Fatalf("the schedule must take the new spec and stay paused with its note:\n%s", out)
	}
	code, out = keyturn(t, env, "schedules", "resume", "e2e/app", "--note", "INC-9 closed")
	if code != 0 || !strings.Contains(out, "resumed "+id) {
		t.Fatalf("resume exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "schedules", "list", "-o", "json")
	var statuses []schedules.Status
	if code != 0 || json.Unmarshal([]byte(out), &statuses) != nil || len(statuses) != 1 {
		t.Fatalf("list -o json exited %d:\n%s", code, out)
	}
	if s := statuses[0]; s.Paused || !strings.HasPrefix(s.Note, "INC-9 closed") || s.Spec != "30 4 * * 2" || len(s.NextRuns) == 0 || s.NextRuns[0].Weekday() != time.Tuesday {
		t.Fatalf("list -o json: %+v", s)
	}

	scheduleInventory(t, env, string(original), "", "")
	code, out = keyturn(t, env, "apply", "--yes")
	if code != 0 || !strings.Contains(out, "- delete    "+id+": e2e/app no longer has a schedule in the inventory") {
		t.Fatalf("apply without the schedule must delete it: exit %d:\n%s", code, out)
	}
	if out := list(); !strings.Contains(out, "No Keyturn schedules") {
		t.Fatalf("list after the delete:\n%s", out)
	}
	code, out = keyturn(t, env, "schedules", "pause", "e2e/app", "--note", "too late")
	if code != 1 || !strings.Contains(out, "no Keyturn schedule for e2e/app") {
		t.Fatalf("pausing a secret without schedules: exit %d:\n%s", code, out)
	}
}
