package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The inventory is decoded by walking yaml.Node trees by hand rather than with
// yaml.Unmarshal into structs: that keeps the line of every field, reports every unknown
// field and wrong type instead of stopping at the first, and catches repeated keys, which
// struct decoding would silently resolve to the last one.

// decoder turns YAML nodes into inventory values and collects decode problems.
type decoder struct {
	report
	// bad lists the field paths that had a decode problem; Load drops validation problems
	// under them, which would only restate the same mistake ("port must be 1..65535"
	// after "port must be a whole number").
	bad []string
}

// fail records a decode problem and marks field as bad.
func (d *decoder) fail(line int, field, format string, args ...any) {
	d.add(line, field, format, args...)
	d.bad = append(d.bad, field)
}

// suppress returns the problems that are not under a field that already failed to decode.
func (d *decoder) suppress(problems Errors) Errors {
	var out Errors
next:
	for _, p := range problems {
		for _, b := range d.bad {
			if p.Field == b || strings.HasPrefix(p.Field, b+".") || strings.HasPrefix(p.Field, b+"[") {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

// entry is one key and its value in a mapping.
type entry struct {
	key, val *yaml.Node
}

// resolve follows aliases to the node they name. Anchors and aliases are allowed so a file
// can share a block; merge keys are not (see fields).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether a value node is YAML null: "key:", "key: ~" or "key: null".
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names what a node is, for "must be X, got Y" messages. It never shows the
// value, which could be a pasted password in the wrong place.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "no value"
		case "!!int":
			return "a number"
		case "!!float":
			return "a decimal number"
		case "!!bool":
			return "true/false"
		}
		return "a string"
	}
	return "an unexpected YAML node"
}

// join appends name to a dotted field path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fields reads a mapping node, reporting keys that are not in known and keys that repeat.
// A null node is an empty mapping. The result is nil when n is not a mapping.
func (d *decoder) fields(n *yaml.Node, path string, known []string) map[string]entry {
	n = resolve(n)
	if isNull(n) {
		return map[string]entry{}
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "must be a mapping of %s, got %s", strings.Join(known, ", "), describe(n))
		return nil
	}
	out := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "keys must be plain field names, got %s; known fields here: %s", describe(k), strings.Join(known, ", "))
			continue
		}
		name := k.Value
		field := join(path, fieldName(name))
		if k.Tag == "!!merge" {
			d.fail(k.Line, path, "YAML merge keys (<<) are not supported; write the fields out in full")
			continue
		}
		if !contains(known, name) {
			hint := ""
			if c := closest(name, known); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			d.fail(k.Line, field, "unknown field %s%s; known fields here: %s", quoteValue(name), hint, strings.Join(known, ", "))
			continue
		}
		if prev, dup := out[name]; dup {
			d.fail(k.Line, field, "set twice (first at line %d); keep only one", prev.key.Line)
			continue
		}
		out[name] = entry{key: k, val: resolve(v)}
	}
	return out
}

// block is one decoded mapping plus where its fields are recorded: problems use the
// absolute path, positions use the path relative to the owner of pos.
type block struct {
	d      *decoder
	fields map[string]entry
	path   string
	rel    string
	pos    positions
}

// take returns the entry for name and records its line. ok is false when the field is
// absent or its mapping failed to decode.
func (b block) take(name string) (entry, bool) {
	e, ok := b.fields[name]
	if ok {
		b.pos[join(b.rel, name)] = e.key.Line
	}
	return e, ok
}

// scalar returns the scalar value node of name, reporting any other node kind.
func (b block) scalar(name, want string) (*yaml.Node, bool) {
	e, ok := b.fields[name]
	if !ok {
		return nil, false
	}
	if e.val.Kind != yaml.ScalarNode {
		b.d.fail(e.val.Line, join(b.path, name), "must be %s, got %s", want, describe(e.val))
		return nil, false
	}
	return e.val, true
}

// str decodes a string field. Any scalar is accepted as its text, so "port-like" values
// such as database: 2024 still work; null leaves dst empty.
func (b block) str(name string, dst *string) bool {
	n, ok := b.scalar(name, "a string")
	if !ok {
		return false
	}
	b.take(name)
	if !isNull(n) {
		*dst = n.Value
	}
	return true
}

// integer decodes a whole-number field.
func (b block) integer(name string, dst *int) bool {
	n, ok := b.scalar(name, "a whole number")
	if !ok {
		return false
	}
	field := join(b.path, name)
	if n.Tag != "!!int" {
		b.d.fail(n.Line, field, "must be a whole number without quotes, got %s; write e.g. %s: 5432 or remove the line", describe(n), name)
		return false
	}
	var v int
	if err := n.Decode(&v); err != nil {
		b.d.fail(n.Line, field, "is not a whole number that fits in an int; write a smaller number")
		return false
	}
	*dst = v
	b.take(name)
	return true
}

// boolean decodes a true/false field.
func (b block) boolean(name string, dst *bool) bool {
	n, ok := b.scalar(name, "true or false")
	if !ok {
		return false
	}
	if n.Tag != "!!bool" {
		b.d.fail(n.Line, join(b.path, name), "must be true or false, got %s (yes, no, on and off are strings in YAML 1.2)", describe(n))
		return false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		b.d.fail(n.Line, join(b.path, name), "must be true or false")
		return false
	}
	*dst = v
	b.take(name)
	return true
}

// duration decodes a duration (see ParseDuration). A bare number is refused: "grace: 15" could mean
// seconds or minutes, and guessing wrong here changes how long a revoked credential lives.
func (b block) duration(name string, dst *time.Duration) bool {
	n, ok := b.scalar(name, "a duration")
	if !ok {
		return false
	}
	field := join(b.path, name)
	switch n.Tag {
	case "!!null":
		b.d.fail(n.Line, field, "has no value; give a duration such as 15m or 0s, or remove the line")
		return false
	case "!!int", "!!float":
		b.d.fail(n.Line, field, "a bare number has no unit; add one, e.g. %[1]ss, %[1]sm or %[1]sh (0s for zero)", displayable(n.Value, maxValueRunes))
		return false
	}
	v, err := ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		b.d.fail(n.Line, field, "%s is not a duration; use a number with a unit: 0s, 90s, 15m, 1h30m, 30d", quoteValue(n.Value))
		return false
	}
	*dst = v
	b.take(name)
	return true
}

// strList decodes a list of strings. A bad item is kept as "" so the indexes of the others
// still match the file.
func (b block) strList(name string, dst *[]string) bool {
	e, ok := b.fields[name]
	if !ok {
		return false
	}
	field := join(b.path, name)
	if isNull(e.val) {
		b.take(name)
		return true
	}
	if e.val.Kind != yaml.SequenceNode {
		b.d.fail(e.val.Line, field, "must be a list, e.g. %s: [a, b], got %s", name, describe(e.val))
		return false
	}
	b.take(name)
	out := make([]string, 0, len(e.val.Content))
	for i, item := range e.val.Content {
		item = resolve(item)
		itemField := fmt.Sprintf("%s[%d]", name, i)
		b.pos[join(b.rel, itemField)] = item.Line
		if item.Kind != yaml.ScalarNode || isNull(item) {
			b.d.fail(item.Line, join(b.path, itemField), "must be a string, got %s", describe(item))
			out = append(out, "")
			continue
		}
		out = append(out, item.Value)
	}
	*dst = out
	return true
}

// sub returns the nested mapping name as a block. ok is false when the field is absent,
// null or not a mapping; the field's line is recorded either way so a "required" problem
// can point at it.
func (b block) sub(name string, known []string) (block, bool) {
	e, ok := b.take(name)
	if !ok || isNull(e.val) {
		return block{}, false
	}
	path := join(b.path, name)
	f := b.d.fields(e.val, path, known)
	if f == nil {
		return block{}, false
	}
	return block{d: b.d, fields: f, path: path, rel: join(b.rel, name), pos: b.pos}, true
}

// contains reports whether list holds v.
func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// number decodes a decimal number field (an integer is fine too).
func (b block) number(name string, dst *float64) bool {
	n, ok := b.scalar(name, "a number")
	if !ok {
		return false
	}
	if n.Tag != "!!float" && n.Tag != "!!int" {
		b.d.fail(n.Line, join(b.path, name), "must be a number without quotes, got %s; write e.g. %s: 0.66", describe(n), name)
		return false
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		b.d.fail(n.Line, join(b.path, name), "is not a number")
		return false
	}
	*dst = v
	b.take(name)
	return true
}

// intList decodes a list of whole numbers (HTTP statuses).
func (b block) intList(name string, dst *[]int) bool {
	e, ok := b.fields[name]
	if !ok {
		return false
	}
	field := join(b.path, name)
	if isNull(e.val) {
		b.take(name)
		return true
	}
	if e.val.Kind != yaml.SequenceNode {
		b.d.fail(e.val.Line, field, "must be a list of numbers, e.g. %s: [200, 201], got %s", name, describe(e.val))
		return false
	}
	b.take(name)
	out := make([]int, 0, len(e.val.Content))
	for i, item := range e.val.Content {
		item = resolve(item)
		var v int
		if item.Kind != yaml.ScalarNode || item.Tag != "!!int" || item.Decode(&v) != nil {
			b.d.fail(item.Line, fmt.Sprintf("%s[%d]", field, i), "must be a whole number, got %s", describe(item))
			continue
		}
		out = append(out, v)
	}
	*dst = out
	return true
}

// strMap decodes a mapping of strings to strings (HTTP headers). Keys keep their case.
func (b block) strMap(name string, dst *map[string]string) bool {
	e, ok := b.take(name)
	if !ok || isNull(e.val) {
		return ok
	}
	field := join(b.path, name)
	if e.val.Kind != yaml.MappingNode {
		b.d.fail(e.val.Line, field, "must be a mapping of names to values, got %s", describe(e.val))
		return false
	}
	out := make(map[string]string, len(e.val.Content)/2)
	for i := 0; i+1 < len(e.val.Content); i += 2 {
		k, v := e.val.Content[i], resolve(e.val.Content[i+1])
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || isNull(v) {
			b.d.fail(k.Line, join(field, k.Value), "must be a name with a string value")
			continue
		}
		if _, dup := out[k.Value]; dup {
			b.d.fail(k.Line, join(field, k.Value), "set twice; keep only one")
			continue
		}
		out[k.Value] = v.Value
	}
	*dst = out
	return true
}
