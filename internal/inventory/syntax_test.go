package inventory

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// prefixSyntaxLine is syntaxLine's definition computed the slow way: the first line from
// the reported one whose prefix of the file fails with msg. syntaxLine must agree with
// it wherever it is cheap enough to run.
func prefixSyntaxLine(data []byte, reported int, msg string) int {
	lines := strings.SplitAfter(string(data), "\n")
	for n := max(reported-1, 1); n <= len(lines); n++ {
		if failsWith([]byte(strings.Join(lines[:n], "")), msg) {
			return n
		}
	}
	return reported
}

// TestSyntaxLineMatchesPrefixSearch breaks every line of the test inventories in several
// ways (indentation, tabs, unclosed quotes and brackets, stray colons) and checks that
// the quick search finds the same line as the exhaustive one.
func TestSyntaxLineMatchesPrefixSearch(t *testing.T) {
	breakers := map[string]func(string) string{
		"indent more":      func(l string) string { return " " + l },
		"indent less":      func(l string) string { return strings.TrimPrefix(l, " ") },
		"indent 3 more":    func(l string) string { return "   " + l },
		"tab":              func(l string) string { return "\t" + l },
		"unclosed quote":   func(l string) string { return strings.TrimSuffix(l, "\n") + " \"\n" },
		"unclosed [":       func(l string) string { return strings.TrimSuffix(l, "\n") + " [\n" },
		"mapping in plain": func(l string) string { return strings.TrimSuffix(l, "\n") + ": x: y\n" },
	}
	for _, file := range []string{"testdata/valid.yaml", "testdata/kinds.yaml", "testdata/many_problems.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(data), "\n")
		checked := 0
		for i := range lines {
			for name, breakLine := range breakers {
				broken := append(append(append([]string(nil), lines[:i]...), breakLine(lines[i])), lines[i+1:]...)
				b := []byte(strings.Join(broken, ""))
				err := parseAll(b)
				if err == nil {
					continue
				}
				checked++
				reported, msg := splitYAMLError(err)
				if got, want := syntaxLine(b, reported, msg), prefixSyntaxLine(b, reported, msg); got != want {
					t.Errorf("%s, line %d, %s: syntaxLine = %d, the prefix search says %d (yaml.v3 reported %d: %s)", file, i+1, name, got, want, reported, msg)
				}
			}
		}
		if checked < 100 {
			t.Errorf("%s: only %d broken variants failed to parse; the test checks too little", file, checked)
		}
	}
}

// largeInventory returns an inventory of about size bytes with a misindented key in the
// third secret from the end, and the line of that key.
func largeInventory(size int) ([]byte, int) {
	var b strings.Builder
	b.WriteString("version: 1\nsecrets:\n")
	const perSecret = 190
	n := max(size/perSecret, 4)
	badLine := 0
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: prod/app-%d\n    kind: postgres\n    postgres:\n      host: db%d.example.com\n      database: orders\n      role: app_%d\n      admin:\n        username: admin\n        password: env:PW\n", i, i, i)
		if i == n-3 {
			b.WriteString("     misindented: x\n")
			badLine = strings.Count(b.String(), "\n")
		}
	}
	return []byte(b.String()), badLine
}

// TestSyntaxErrorLineInLargeFile loads a 2 MB inventory with a syntax error near its end
// and checks the problem names the misindented line itself, not the block around it.
// Before the search was made linear this took most of a minute, or gave up and reported
// yaml.v3's line.
func TestSyntaxErrorLineInLargeFile(t *testing.T) {
	data, badLine := largeInventory(2 << 20)
	if len(data) < 2<<20 || len(data) > maxFileSize {
		t.Fatalf("generated %d bytes, want 2 MB up to the %d-byte limit", len(data), maxFileSize)
	}
	_, err := Load(writeTemp(t, string(data)))
	probs := problemsOf(t, err)
	if len(probs) != 1 || probs[0].Line != badLine || !strings.Contains(probs[0].Message, "YAML syntax error") {
		t.Fatalf("want one YAML syntax error at line %d, got %v", badLine, err)
	}
}

// BenchmarkSyntaxLine measures finding the fault line in a 20 KB and a 2 MB inventory.
func BenchmarkSyntaxLine(b *testing.B) {
	for _, size := range []int{20 << 10, 2 << 20} {
		data, badLine := largeInventory(size)
		reported, msg := splitYAMLError(parseAll(data))
		b.Run(fmt.Sprintf("%dKB", len(data)>>10), func(b *testing.B) {
			for b.Loop() {
				if got := syntaxLine(data, reported, msg); got != badLine {
					b.Fatalf("syntaxLine = %d, want %d", got, badLine)
				}
			}
		})
	}
}
