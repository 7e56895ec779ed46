package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// safeForTerminal reports why s could harm or flood a terminal, or "".
func safeForTerminal(s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return fmt.Sprintf("non-printing character %U", r)
		}
	}
	return ""
}

func TestQuoteValue(t *testing.T) {
	long := strings.Repeat("x", 10<<10)
	tests := map[string]struct {
		in, want string
	}{
		"plain":                 {"orders_app", `"orders_app"`},
		"empty":                 {"", `""`},
		"quotes and backslash":  {`a"b\c`, `"a\"b\\c"`},
		"ANSI colour":           {"\x1b[31mred\x1b[0m", `"red"`},
		"ANSI cursor and clear": {"ok\x1b[2K\x1b[1Afake", `"okfake"`},
		"OSC title with BEL":    {"a\x1b]0;pwned\x07b", `"ab"`},
		"OSC hyperlink with ST": {"\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", `"click"`},
		"two-byte escape":       {"a\x1bcb", `"ab"`},
		"lone ESC at the end":   {"abc\x1b", `"abc"`},
		"carriage return":       {"good\rEVIL", `"goodEVIL"`},
		"newline and tab":       {"line1\nline2\tx", `"line1line2x"`},
		"C1 CSI":                {"a\u009b31mb", `"a31mb"`},
		"DEL and NUL":           {"a\x7f\x00b", `"ab"`},
		"bidi override":         {"abc\u202edef", `"abcdef"`},
		"invalid UTF-8":         {"a\xff\xfeb", "\"a\uFFFD\uFFFDb\""},
		"unicode kept":          {"Grüße 日本", `"Grüße 日本"`},
		"10 KB string":          {long, `"` + strings.Repeat("x", maxValueRunes) + `…"`},
		"exactly the cap":       {strings.Repeat("y", maxValueRunes), `"` + strings.Repeat("y", maxValueRunes) + `"`},
		"cap counts runes":      {strings.Repeat("é", 100), `"` + strings.Repeat("é", maxValueRunes) + `…"`},
		"escapes do not count":  {strings.Repeat("\x1b[0m", 100) + "ok", `"ok"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := quoteValue(tc.in)
			if got != tc.want {
				t.Errorf("quoteValue(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if why := safeForTerminal(got); why != "" {
				t.Errorf("quoteValue(%q) = %q holds %s", tc.in, got, why)
			}
		})
	}
}

// TestProblemsNeverEchoRawValues loads an inventory whose values are hostile and checks
// that no problem repeats them raw: no control characters, no escape sequences, and no
// value longer than the cap.
func TestProblemsNeverEchoRawValues(t *testing.T) {
	esc := `\e[2J\e[31m\r`
	big := strings.Repeat("A", 10<<10)
	inv := `version: 1
secrets:
  - id: "prod/` + esc + `x"
    kind: "postgres` + esc + `"
    tags: ["` + esc + `", "` + big + `"]
    timezone: "Europe/` + esc + `\x85"
    schedule: "` + esc + ` 61 * * *"
    grace: "` + big + `"
    "` + esc + `key": 1
    postgres:
      host: db.example.com
      database: orders
      sslmode: "` + esc + big + `"
      strategy: "\xff\u202e` + esc + `"
      role: app
      admin: {username: admin, password: "env:X"}
  - id: "prod/` + esc + `x"
    kind: httpapi
    httpapi:
      admin: env:A
      create: {method: "P` + esc + `OST", url: "http://` + esc + `evil.example.com/keys"}
      test: {method: GET, url: https://api.example.com/whoami}
      revoke: {method: DELETE, url: https://api.example.com/keys}
      key_id: id
      key_secret: secret
`
	_, err := Load(writeTemp(t, inv))
	probs := problemsOf(t, err)
	if len(probs) < 8 {
		t.Fatalf("want a problem for each hostile value, got %d:\n%v", len(probs), err)
	}
	for _, p := range probs {
		s := p.String()
		if why := safeForTerminal(s); why != "" {
			t.Errorf("problem holds %s: %q", why, s)
		}
		if strings.Contains(s, strings.Repeat("A", maxValueRunes+1)) {
			t.Errorf("problem repeats more than %d runes of a value: %.200q", maxValueRunes, s)
		}
		if strings.Contains(s, "[2J") || strings.Contains(s, "[31m") {
			t.Errorf("problem keeps an escape sequence's body: %q", s)
		}
	}
}

// writeTemp writes an inventory to a temporary file and returns its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
