package cli

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// TestNewIncidentIDsDifferInOneSecond: default IDs made in the same second differ. The
// suffix is 30 random bits, so 200 IDs share one with a chance of about 2 in 100,000
// (a 4-character suffix made this test fail about once in 80 runs).
func TestNewIncidentIDsDifferInOneSecond(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 25, 1, 0, time.UTC)
	re := regexp.MustCompile(`^inc-20261203-142501-[a-km-np-z2-9]{6}$`)
	seen := map[string]bool{}
	for range 200 {
		id := newIncidentID(now)
		if !re.MatchString(id) {
			t.Fatalf("default ID %q, want inc-20261203-142501- and six of a-z, 2-9 without l and o", id)
		}
		if seen[id] {
			t.Fatalf("default ID %q made twice in one second", id)
		}
		seen[id] = true
	}
}

// TestIncidentVerdictNeedsAHuman: a report whose secrets ended failed or revoke_failed
// exits non-zero even when the workflow completed, and the report says which secret and
// what to do; a clean report exits zero.
func TestIncidentVerdictNeedsAHuman(t *testing.T) {
	clean := workflows.IncidentReport{IncidentID: "i", Secrets: []workflows.SecretReport{{ID: "a/ok", Outcome: workflows.OutcomeRotated}}}
	if err := incidentVerdict(clean, nil); err != nil {
		t.Fatalf("a clean incident: %v", err)
	}
	rep := clean
	rep.Secrets = append(rep.Secrets,
		workflows.SecretReport{ID: "a/revoke", Outcome: workflows.OutcomeRevokeFailed, Error: "revoke: connection refused"},
		workflows.SecretReport{ID: "a/failed", Outcome: workflows.OutcomeFailed, Error: "rollback failed too"})
	err := incidentVerdict(rep, nil)
	if err == nil || !strings.Contains(err.Error(), "2 secret(s) need a human") {
		t.Fatalf("verdict %v, want 2 secrets needing a human", err)
	}
	var b strings.Builder
	printReport(&b, rep, "/opt/keyturn --address 10.0.0.1:7233")
	out := b.String()
	for _, want := range []string{
		"NEEDS A HUMAN: 2 secret(s)",
		"a/revoke (revoke_failed): a credential that should have been revoked may still be accepted by the target",
		"`/opt/keyturn --address 10.0.0.1:7233 incident start --select id=a/revoke",
		"a/failed (failed): the rotation did not finish",
		"workflow rotate/a/failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	large := rep
	large.Unlisted = 4000
	b.Reset()
	printReport(&b, large, "kt")
	if !strings.Contains(b.String(), "4000 more secrets are not listed (a report lists at most one page): 4000 rotated as planned, 0 needing a human; their records: kt incident evidence i") {
		t.Errorf("a large incident's report does not say what it leaves out:\n%s", b.String())
	}
	if strings.Contains(out, "a/ok (") {
		t.Errorf("a rotated secret is listed as needing a human:\n%s", out)
	}
	if err := incidentVerdict(clean, errors.New("boom")); err == nil {
		t.Fatal("a failed incident must exit non-zero")
	}
	diff := clean
	diff.ScopeDiff = workflows.ScopeDiff{Unmatched: []secret.ID{"a/gone"}}
	if err := incidentVerdict(diff, nil); err == nil || !strings.Contains(err.Error(), "not the plan shown") {
		t.Fatalf("a scope difference: %v", err)
	}
}

// TestScheduleResumeArguments: resume takes secret IDs or --incident, never both or
// neither, and says so before dialling anything.
func TestScheduleResumeArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schedules", "resume"}, "or --incident <incident-id>"},
		{[]string{"schedules", "resume", "--incident", "i-1", "prod/a"}, "give no secret IDs with it"},
		{[]string{"schedules", "pause"}, "name the secrets whose schedules to pause"},
	} {
		code, out := run(t, "", append([]string{"--address", "127.0.0.1:1"}, tc.args...)...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v exited %d, want %q:\n%s", tc.args, code, tc.want, out)
		}
	}
}

// TestPrintSchedulesSaysAPauseFailed: after a pause that failed part way the report says
// some schedules may be paused unlisted, and gives the command that finds them.
func TestPrintSchedulesSaysAPauseFailed(t *testing.T) {
	var b strings.Builder
	printSchedules(&b, workflows.PausedSchedules{PauseFailed: true, Note: "incident i (op): leak", ResumeCommand: workflows.ResumeCommand("i")}, "")
	if out := b.String(); !strings.Contains(out, "failed part way") || !strings.Contains(out, "keyturn schedules resume --incident i") {
		t.Fatalf("report:\n%s", out)
	}
}
