package inventory

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Bounds on the work syntaxLine does, so a large file costs a few parses of itself at
// most: maxExcerptBytes caps the excerpt its quick search grows (an error that yaml.v3
// places at the start of a long block, such as an unclosed quote, is reported where
// yaml.v3 says), and fallbackBudget caps the bytes parsed when it falls back to trying
// prefixes one line longer each time.
const (
	maxExcerptBytes = 64 << 10
	fallbackBudget  = 1 << 20
)

// syntax records a YAML syntax error, with its line moved from the message into
// Problem.Line.
func (d *decoder) syntax(err error, data []byte) {
	line, msg := splitYAMLError(err)
	line = syntaxLine(data, line, msg)
	msg = displayable(msg, maxMessageRunes)
	d.Fail(line, "", "YAML syntax error: %s; fix the syntax (indent with spaces, close brackets and quotes, quote values that start with @, * or &)", msg)
}

// splitYAMLError separates yaml.v3's "yaml: line N: " prefix from the message.
func splitYAMLError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// syntaxLine finds the line at fault. yaml.v3 often reports where the enclosing block
// starts instead (for a misindented key deep in a secret that is the secrets: line),
// which sends people to the wrong place. The fault is on the last line of the shortest
// prefix of the file, starting from the reported line, that fails with the same message;
// requiring the same message skips prefixes that only fail because they cut a
// multi-line value in half. When no prefix matches, the reported line stands.
//
// Parsing every prefix in turn is quadratic (a 2 MB file took most of a minute), so the
// search first parses a small excerpt instead of the prefix: the lines that enclose the
// reported line (its ancestors by indentation) followed by the lines from it on. It
// gallops forward in doubling steps until the excerpt fails with the message and bisects
// back to the first line that does; then two parses of the file's own prefixes, cut
// after that line and before it, confirm the answer. Only when they do not (the excerpt
// lacked something above it, such as an anchor) does it fall back to trying prefixes in
// turn, within fallbackBudget bytes of parsing.
func syntaxLine(data []byte, reported int, msg string) int {
	ends := lineEnds(data)
	start := max(reported-1, 1)
	if start > len(ends) {
		return reported
	}
	prefix := func(n int) []byte { return data[:lineStart(ends, n+1)] }
	if n, ok := excerptSearch(data, ends, start, msg); ok &&
		failsWith(prefix(n), msg) && (n == start || !failsWith(prefix(n-1), msg)) {
		return n
	}
	parsed := 0
	for n := start; n <= len(ends) && parsed <= fallbackBudget; n++ {
		p := prefix(n)
		parsed += len(p)
		if failsWith(p, msg) {
			return n
		}
	}
	return reported
}

// excerptSearch returns the first line n >= start for which the excerpt made of start's
// ancestors and lines start..n fails with msg, assuming that once it fails it keeps
// failing; ok is false when no excerpt up to maxExcerptBytes fails that way.
func excerptSearch(data []byte, ends []int, start int, msg string) (int, bool) {
	head := ancestors(data, ends, start)
	from := lineStart(ends, start)
	excerpt := func(n int) []byte {
		return append(head[:len(head):len(head)], data[from:ends[n-1]]...)
	}
	// lo is a line whose excerpt does not fail with msg (start-1 stands for the excerpt
	// with no line of its own), hi the first probe that does.
	lo, hi, step := start-1, start, 1
	for !failsWith(excerpt(hi), msg) {
		if hi == len(ends) || ends[hi-1]-from > maxExcerptBytes {
			return 0, false
		}
		lo, hi, step = hi, min(hi+step, len(ends)), step*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if failsWith(excerpt(mid), msg) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, true
}

// ancestors returns the lines above line n that enclose it by indentation, in file
// order: each is less indented than the one after it, or a mapping key above a
// sequence item at the same indentation (secrets:\n- id: ...).
func ancestors(data []byte, ends []int, n int) []byte {
	indent, item := indentation(line(data, ends, n))
	if indent < 0 {
		return nil
	}
	var keep []int
	for j := n - 1; j >= 1 && (indent > 0 || item); j-- {
		in, isItem := indentation(line(data, ends, j))
		if in < 0 || in > indent || (in == indent && (isItem || !item)) {
			continue
		}
		keep = append(keep, j)
		indent, item = in, isItem
	}
	var out []byte
	for i := len(keep) - 1; i >= 0; i-- {
		out = append(out, line(data, ends, keep[i])...)
	}
	return out
}

// indentation returns the number of leading spaces of l and whether it starts a sequence
// item; -1 for a blank or comment-only line, which encloses nothing.
func indentation(l []byte) (int, bool) {
	rest := bytes.TrimLeft(l, " ")
	if t := bytes.TrimSpace(rest); len(t) == 0 || t[0] == '#' {
		return -1, false
	}
	return len(l) - len(rest), rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\n' || rest[1] == '\r')
}

// line returns line n (1-based) of data with its newline.
func line(data []byte, ends []int, n int) []byte { return data[lineStart(ends, n):ends[n-1]] }

// lineStart returns the byte offset where line n (1-based) starts; for n past the last
// line, the end of data.
func lineStart(ends []int, n int) int {
	if n <= 1 {
		return 0
	}
	return ends[n-2]
}

// lineEnds returns the byte offset just past each line of data (after its newline, or
// the end of data for a last line without one).
func lineEnds(data []byte) []int {
	var ends []int
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// failsWith reports whether parsing data fails with msg.
func failsWith(data []byte, msg string) bool {
	err := parseAll(data)
	if err == nil {
		return false
	}
	_, got := splitYAMLError(err)
	return got == msg
}

// parseAll parses every document in data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
