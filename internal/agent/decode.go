package agent

import (
	"github.com/keyturn/keyturn/internal/yamlfields"

	"gopkg.in/yaml.v3"
)

// The agent's file is decoded with yamlfields, as the inventory is: every problem is
// collected with its line, unknown and repeated keys are reported (with the closest known
// field name), aliases are followed, and values are never echoed (a token pasted into the
// wrong field must not reach a log).

// Problem is one thing wrong with the agent's configuration file: File is its path,
// Field the dotted path such as "templates[1].format".
type Problem = yamlfields.Problem

// Errors is every problem found in one configuration file; Load returns it.
type Errors []Problem

// Error lists the problems, one a line, in file order.
func (e Errors) Error() string {
	return yamlfields.Summary("agent config", e)
}

// problems collects Problems for one file.
type problems struct {
	yamlfields.Decoder
	// lines holds the line of every field in the file, by dotted path, so a problem found
	// after decoding (validation) points at the field's own line.
	lines map[string]int
}

// add records a problem; a field present in the file is placed on its own line, else on
// line (its block's, or 0 for the file as a whole).
func (p *problems) add(line int, field, format string, args ...any) {
	if l, ok := p.lines[field]; ok {
		line = l
	}
	p.Add(line, field, format, args...)
}

// mapping reads n as a mapping whose keys must be in known and notes the line of each
// key. ok is false (and a problem is recorded) when n is not a mapping.
func (p *problems) mapping(n *yaml.Node, path string, known []string) (yamlfields.Block, bool) {
	n = yamlfields.Resolve(n)
	fields := p.Fields(n, path, known)
	if fields == nil {
		return yamlfields.Block{}, false
	}
	if p.lines == nil {
		p.lines = map[string]int{}
	}
	for name, e := range fields {
		p.lines[yamlfields.Join(path, name)] = e.Key.Line
	}
	return yamlfields.Block{D: &p.Decoder, Fields: fields, Path: path, Rel: path, Pos: p.lines, Line: n.Line}, true
}
