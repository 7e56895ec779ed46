package yamlfields

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a file, placed so an editor can jump to it.
type Problem struct {
	// File is the file's path.
	File string
	// Line is 1-based; 0 when the place is unknown.
	Line int
	// Field is the dotted path of the field, e.g. "secrets[2].postgres.port"; empty for a
	// problem with the file as a whole, such as a YAML syntax error.
	Field string
	// Message says what is wrong and what to do about it.
	Message string
	// Severity is SeverityError (the zero value) for a problem that makes the file
	// invalid, SeverityWarning for one that is accepted.
	Severity Severity
}

// Severity says whether a problem refuses the file.
type Severity int

const (
	// SeverityError: the file is refused until it is fixed.
	SeverityError Severity = iota
	// SeverityWarning: the file works as written, but likely not as meant; it never
	// refuses the file.
	SeverityWarning
)

// String formats the problem as "file:line: field: message", dropping the parts that are
// unknown; a warning reads "file:line: warning: field: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Sorted returns a copy ordered by line; problems on the same line keep the order they
// were found in, which follows the file.
func Sorted(problems []Problem) []Problem {
	out := append([]Problem(nil), problems...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Summary lists problems one a line, in file order, under the header
// "<what> <file> has N problem(s):". The file is taken from the problems, else
// "<what>" in angle brackets. Each package's error type formats itself with it, so
// `keyturn config validate` and the agent print the same shape.
func Summary(what string, problems []Problem) string {
	sorted := Sorted(problems)
	file := "<" + what + ">"
	if len(problems) > 0 && problems[0].File != "" {
		file = problems[0].File
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s has %d problem(s):", what, file, len(sorted))
	for _, p := range sorted {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Report collects problems for one file.
type Report struct {
	// File is the path every problem names.
	File string
	// Problems holds what was found, in the order it was found.
	Problems []Problem
}

// Add records a problem.
func (r *Report) Add(line int, field, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{
		File:    r.File,
		Line:    line,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// Closest returns the candidate nearest to got by edit distance when it is near enough to
// be a likely typo, or "".
func Closest(got string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestDist && d < len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// QuoteList renders allowed values for a message: "a", "b", "c". The values are the
// program's own (known fields, formats), never the file's.
func QuoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
