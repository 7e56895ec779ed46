package secret_test

import (
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
)

// A rejected ID is repeated quoted, with control characters escaped, and cut short: a
// pasted or hostile value never reaches a terminal raw or whole.
func TestInvalidIDIsNeverEchoedRaw(t *testing.T) {
	for name, id := range map[string]string{
		"escape sequence": "prod/\x1b[31mred\x1b[0m",
		"newline":         "prod/a\nkeyturn: all good",
		"long":            "prod/" + strings.Repeat("x", 10_000),
	} {
		err := secret.ID(id).Validate()
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\x1b\n") || len(msg) > 400 {
			t.Errorf("%s: the message echoes the value raw or whole (%d bytes): %.120q", name, len(msg), msg)
		}
	}
}
