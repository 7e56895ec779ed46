package agent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The agent's file is decoded by walking yaml.Node trees, as the inventory is: every
// problem is collected with its line, unknown and repeated keys are reported, and values
// are never echoed (a token pasted into the wrong field must not reach a log).

// Problem is one thing wrong with the agent's configuration file.
type Problem struct {
	// File is the configuration file's path.
	File string
	// Line is 1-based; 0 when the place is unknown.
	Line int
	// Field is the dotted path of the field, e.g. "templates[1].format".
	Field string
	// Message says what is wrong and how to fix it.
	Message string
}

// String formats the problem as "file:line: field: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found in one configuration file; Load returns it.
type Errors []Problem

// Error lists the problems, one a line, in file order.
func (e Errors) Error() string {
	sorted := append(Errors(nil), e...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Line < sorted[j].Line })
	file := "<agent config>"
	if len(sorted) > 0 && sorted[0].File != "" {
		file = sorted[0].File
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agent config %s has %d problem(s):", file, len(sorted))
	for _, p := range sorted {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// problems collects Problems for one file.
type problems struct {
	file string
	list Errors
	// lines holds the line of every field decoded, by dotted path, so a problem found
	// after decoding (validation) points at the field's own line when it is in the file.
	lines map[string]int
}

// add records a problem; a field present in the file is placed on its own line, else on
// line (its block's, or 0 for the file as a whole).
func (p *problems) add(line int, field, format string, args ...any) {
	if l, ok := p.lines[field]; ok {
		line = l
	}
	p.list = append(p.list, Problem{File: p.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// mapping is one decoded YAML mapping: its fields by name, with where it sits.
type mapping struct {
	p      *problems
	path   string
	line   int
	fields map[string][2]*yaml.Node // key node, value node
}

// kind names what a node is for "must be X, got Y" messages, never its value.
func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "no value"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		}
		return "a string"
	}
	return "an alias or anchor"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decodeMapping reads n as a mapping whose keys must be in known. It returns false (and
// records a problem) when n is not a mapping.
func (p *problems) decodeMapping(n *yaml.Node, path string, known []string) (mapping, bool) {
	m := mapping{p: p, path: path, line: n.Line, fields: map[string][2]*yaml.Node{}}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return m, true
	}
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "must be a mapping with the fields %s, got %s", strings.Join(known, ", "), kind(n))
		return m, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			p.add(k.Line, path, "keys must be plain field names (no anchors or merge keys); known fields here: %s", strings.Join(known, ", "))
			continue
		}
		if !contains(known, k.Value) {
			p.add(k.Line, join(path, strconv.Quote(shorten(k.Value))), "unknown field; known fields here: %s", strings.Join(known, ", "))
			continue
		}
		if prev, dup := m.fields[k.Value]; dup {
			p.add(k.Line, join(path, k.Value), "set twice (first at line %d); keep one", prev[0].Line)
			continue
		}
		m.fields[k.Value] = [2]*yaml.Node{k, v}
		if p.lines == nil {
			p.lines = map[string]int{}
		}
		p.lines[join(path, k.Value)] = k.Line
	}
	return m, true
}

// has reports whether the field is present and not null.
func (m mapping) has(name string) bool {
	f, ok := m.fields[name]
	return ok && !(f[1].Kind == yaml.ScalarNode && f[1].Tag == "!!null")
}

// lineOf is the line of the field's key, or of the mapping when it is absent.
func (m mapping) lineOf(name string) int {
	if f, ok := m.fields[name]; ok {
		return f[0].Line
	}
	return m.line
}

// scalar returns the scalar node of name, reporting any other kind.
func (m mapping) scalar(name, want string) (*yaml.Node, bool) {
	f, ok := m.fields[name]
	if !ok || (f[1].Kind == yaml.ScalarNode && f[1].Tag == "!!null") {
		return nil, false
	}
	if f[1].Kind != yaml.ScalarNode {
		m.p.add(f[1].Line, join(m.path, name), "must be %s, got %s", want, kind(f[1]))
		return nil, false
	}
	return f[1], true
}

// str decodes a string field; any scalar is taken as its text.
func (m mapping) str(name string, dst *string) {
	if n, ok := m.scalar(name, "a string"); ok {
		*dst = n.Value
	}
}

// integer decodes a whole number.
func (m mapping) integer(name string, dst *int) {
	n, ok := m.scalar(name, "a whole number")
	if !ok {
		return
	}
	v, err := strconv.Atoi(n.Value)
	if n.Tag != "!!int" || err != nil {
		m.p.add(n.Line, join(m.path, name), "must be a whole number without quotes, got %s", kind(n))
		return
	}
	*dst = v
}

// duration decodes a Go duration such as 30s or 5m; a bare number is refused, since
// "poll: 30" could mean seconds or minutes.
func (m mapping) duration(name string, dst *time.Duration) {
	n, ok := m.scalar(name, "a duration")
	if !ok {
		return
	}
	d, err := time.ParseDuration(n.Value)
	if n.Tag == "!!int" || n.Tag == "!!float" {
		m.p.add(n.Line, join(m.path, name), "a bare number has no unit; write e.g. 30s or 5m")
		return
	}
	if err != nil {
		m.p.add(n.Line, join(m.path, name), "is not a duration; write a number with a unit, e.g. 30s, 5m or 1h")
		return
	}
	*dst = d
}

// strList decodes a list of strings (a command's argv, a list of fields).
func (m mapping) strList(name string, dst *[]string) {
	f, ok := m.fields[name]
	if !ok || (f[1].Kind == yaml.ScalarNode && f[1].Tag == "!!null") {
		return
	}
	field := join(m.path, name)
	if f[1].Kind != yaml.SequenceNode {
		m.p.add(f[1].Line, field, "must be a list, e.g. %s: [a, b], got %s", name, kind(f[1]))
		return
	}
	out := make([]string, 0, len(f[1].Content))
	for i, item := range f[1].Content {
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			m.p.add(item.Line, fmt.Sprintf("%s[%d]", field, i), "must be a string, got %s", kind(item))
			continue
		}
		out = append(out, item.Value)
	}
	*dst = out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// shorten cuts a key a message repeats, so a pasted value used as a key stays short.
func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
