package workflows

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPauseNoteFitsTemporalsLimit: an incident's pause note never exceeds the 1,000
// bytes Temporal accepts, is cut on a character boundary with a mark, and is left whole
// when it fits.
func TestPauseNoteFitsTemporalsLimit(t *testing.T) {
	run := func(reason string) string {
		r := &incidentRun{in: IncidentInput{IncidentID: "inc-1", Operator: "alice", Reason: reason}}
		return r.pauseNote()
	}
	if got := run("key in a paste"); got != "incident inc-1 (alice): key in a paste" {
		t.Fatalf("a short note must be whole: %q", got)
	}
	for _, reason := range []string{strings.Repeat("credential found in a public paste; ", 30), strings.Repeat("é", 700), strings.Repeat("鍵", 400)} {
		got := run(reason)
		if len(got) > maxPauseNoteBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "incident inc-1 (alice): ") {
			t.Fatalf("note of %d bytes (valid UTF-8: %v): %q", len(got), utf8.ValidString(got), got)
		}
		if len(got) < maxPauseNoteBytes-len("鍵") {
			t.Fatalf("the note was cut to %d bytes, shorter than it needs", len(got))
		}
	}
}
