package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Problem is one thing wrong with an inventory file, placed so an editor can jump to it.
type Problem struct {
	// File is the inventory's path.
	File string
	// Line is 1-based; 0 when the place is unknown.
	Line int
	// Field is the dotted path of the field, e.g. "secrets[2].postgres.port"; empty for a
	// problem with the file as a whole, such as a YAML syntax error.
	Field string
	// Message says what is wrong and what to do about it.
	Message string
	// Severity is SeverityError (the zero value) for a problem that makes the inventory
	// invalid, SeverityWarning for one that Load accepts; see Inventory.Warnings.
	Severity Severity
}

// Severity says whether a problem refuses the inventory.
type Severity int

const (
	// SeverityError: the inventory is refused until it is fixed.
	SeverityError Severity = iota
	// SeverityWarning: the inventory works as written, but likely not as meant; it is
	// printed by `keyturn config validate` and at the start of `keyturn dev` and
	// `keyturn worker`, and never refuses the inventory.
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

// Errors is every problem found in one inventory file. It is the error Parse, Validate
// and Load return, so callers can print it whole or walk the problems with errors.As.
type Errors []Problem

// Error lists the problems, one a line under a header, in file order.
func (e Errors) Error() string {
	file := "<inventory>"
	if len(e) > 0 && e[0].File != "" {
		file = e[0].File
	}
	sorted := e.sorted()
	var b strings.Builder
	fmt.Fprintf(&b, "inventory %s has %d problem(s):", file, len(sorted))
	for _, p := range sorted {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// sorted returns a copy ordered by line; problems on the same line keep the order they
// were found in, which follows the file.
func (e Errors) sorted() Errors {
	out := append(Errors(nil), e...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// orNil returns nil for an empty list so a function returning error never returns a
// non-nil interface holding no problems.
func (e Errors) orNil() error {
	if len(e) == 0 {
		return nil
	}
	return e.sorted()
}

// report collects problems for one file.
type report struct {
	file     string
	problems Errors
}

// add records a problem.
func (r *report) add(line int, field, format string, args ...any) {
	r.problems = append(r.problems, Problem{
		File:    r.file,
		Line:    line,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// quoteList renders allowed values for a message: "a", "b", "c".
func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// ShortDuration formats d without trailing zero units: 168h instead of 168h0m0s. Every
// place that shows a duration to a person (problems, schedules, status) uses it.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// closest returns the candidate nearest to got by edit distance when it is near enough to
// be a likely typo, or "".
func closest(got string, candidates []string) string {
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
