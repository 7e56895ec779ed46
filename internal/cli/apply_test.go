package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scheduledInventory = `version: 1
secrets:
  - id: prod/app
    kind: postgres
    schedule: "0 3 * * 1"
    timezone: Europe/Berlin
    window: 30m
    postgres:
      host: db.internal
      database: app
      role: app
      admin:
        username: keyturn_admin
        password: "env:PGADMIN"
  - id: prod/other
    kind: postgres
    postgres:
      host: db.internal
      database: app
      role: other
      admin:
        username: keyturn_admin
        password: "env:PGADMIN"
`

// closedAddress is a loopback port nothing listens on: a command that reached for
// Temporal there would fail with "connect to Temporal".
const closedAddress = "127.0.0.1:1"

func writeInventory(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An inventory with a bad cron spec is refused with the place and the fix, before any
// command reaches for Temporal.
func TestScheduleCommandsRefuseBadSpecsBeforeTemporal(t *testing.T) {
	bad := writeInventory(t, "bad.yaml", strings.Replace(scheduledInventory, `"0 3 * * 1"`, `"*/10 * * * *"`, 1))
	for _, args := range [][]string{
		{"apply", "--yes"},
		{"diff"},
		{"schedules", "preview", "prod/app"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out := run(t, "", append(args, "-f", bad, "--address", closedAddress)...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, out)
			}
			for _, want := range []string{"bad.yaml:5: secrets[0].schedule", "at most once an hour", "nothing was sent to Temporal"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "connect to Temporal") {
				t.Errorf("the command reached for Temporal:\n%s", out)
			}
		})
	}
}

func TestScheduleCommandsBadArguments(t *testing.T) {
	good := writeInventory(t, "inv.yaml", scheduledInventory)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"apply without inventory":    {[]string{"apply"}, "pass -f FILE"},
		"preview count":              {[]string{"schedules", "preview", "prod/app", "-f", good, "-n", "0"}, "-n 0: show between 1 and 100"},
		"preview unknown secret":     {[]string{"schedules", "preview", "prod/nope", "-f", good}, `secret "prod/nope" is not in inventory`},
		"preview unscheduled secret": {[]string{"schedules", "preview", "prod/other", "-f", good}, "inv.yaml:15) has no schedule"},
		"pause without note":         {[]string{"schedules", "pause", "prod/app"}, "--note is required"},
		"pause bad id":               {[]string{"schedules", "pause", "Not Valid", "--note", "x"}, "not path-like"},
		"list output":                {[]string{"schedules", "list", "-o", "yaml"}, "use table or json"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KEYTURN_INVENTORY", "")
			code, out := run(t, "", append(tc.args, "--address", closedAddress)...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit code %d, want 1 with %q:\n%s", code, tc.want, out)
			}
		})
	}
}

// Without Temporal, a preview still shows the inventory's times, in the spec's zone.
func TestSchedulePreviewWithoutTemporal(t *testing.T) {
	good := writeInventory(t, "inv.yaml", scheduledInventory)
	code, out := run(t, "", "schedules", "preview", "prod/app", "-f", good, "-n", "3", "--address", closedAddress)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	for _, want := range []string{`keyturn/prod/app: "0 3 * * 1" in Europe/Berlin, window 30m`, "from the inventory:", "Temporal is not reachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Mon 20"); n != 3 {
		t.Errorf("want 3 Monday runs, got %d:\n%s", n, out)
	}
	if !strings.Contains(out, " 03:00 CET") && !strings.Contains(out, " 03:00 CEST") {
		t.Errorf("runs must be shown at 03:00 Berlin time:\n%s", out)
	}
}

func TestExitCode(t *testing.T) {
	pending := &exitError{code: ExitPending, err: errors.New("2 pending")}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{pending, ExitPending},
		{fmt.Errorf("diff: %w", pending), ExitPending},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
