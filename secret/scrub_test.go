package secret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type detailed struct{ hidden string }

func (d *detailed) Error() string                 { return "request failed" }
func (d *detailed) Format(f fmt.State, verb rune) { fmt.Fprintf(f, "request failed (%s)", d.hidden) }

// TestScrubError: an error that holds a value comes back redacted, unwrapping only to the
// sentinels it matched and its context error; one that holds none comes back as it was;
// a value visible only in %+v still counts.
func TestScrubError(t *testing.T) {
	sentinel, other := errors.New("permission denied"), errors.New("other")
	err := fmt.Errorf("login with pw-long-secret failed: %w (%w)", sentinel, context.DeadlineExceeded)
	got := ScrubError(err, []string{"pw-long-secret", ""}, sentinel, other)
	if strings.Contains(got.Error(), "pw-long-secret") || !strings.Contains(got.Error(), Redacted) {
		t.Fatalf("not redacted: %v", got)
	}
	if !errors.Is(got, sentinel) || !errors.Is(got, context.DeadlineExceeded) || errors.Is(got, other) {
		t.Fatalf("the scrubbed error must keep exactly the matched sentinels and the context error: %v", got)
	}
	if clean := errors.New("no material here"); ScrubError(clean, []string{"pw-long-secret"}) != clean {
		t.Fatal("an error without material must come back unchanged")
	}
	if got := ScrubError(&detailed{hidden: "pw-long-secret"}, []string{"pw-long-secret"}); got.Error() != "request failed" || fmt.Sprintf("%+v", got) != "request failed" {
		t.Fatalf("a value in %%+v only must still replace the error: %+v", got)
	}
	if got := RedactAll("ab abc", "ab", "abc"); got != Redacted+" "+Redacted {
		t.Fatalf("longest first: %q", got)
	}
}
