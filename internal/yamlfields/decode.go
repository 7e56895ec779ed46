package yamlfields

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decoder turns YAML nodes into values and collects decode problems.
type Decoder struct {
	Report
	// bad lists the field paths that had a decode problem; Suppress drops validation
	// problems under them, which would only restate the same mistake ("port must be
	// 1..65535" after "port must be a whole number").
	bad []string
}

// Fail records a decode problem and marks field as bad.
func (d *Decoder) Fail(line int, field, format string, args ...any) {
	d.Add(line, field, format, args...)
	d.bad = append(d.bad, field)
}

// Suppress returns the problems that are not under a field that already failed to decode.
func (d *Decoder) Suppress(problems []Problem) []Problem {
	var out []Problem
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

// Entry is one key and its value in a mapping; Val has its aliases resolved.
type Entry struct {
	Key, Val *yaml.Node
}

// Resolve follows aliases to the node they name. Anchors and aliases are allowed so a file
// can share a block; merge keys are not (see Fields).
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether a value node is YAML null: "key:", "key: ~" or "key: null".
func IsNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// Describe names what a node is, for "must be X, got Y" messages. It never shows the
// value, which could be a pasted password in the wrong place.
func Describe(n *yaml.Node) string {
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

// Join appends name to a dotted field path.
func Join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Fields reads a mapping node, reporting keys that are not in known and keys that repeat.
// A null node is an empty mapping. The result is nil when n is not a mapping.
func (d *Decoder) Fields(n *yaml.Node, path string, known []string) map[string]Entry {
	n = Resolve(n)
	if IsNull(n) {
		return map[string]Entry{}
	}
	if n.Kind != yaml.MappingNode {
		d.Fail(n.Line, path, "must be a mapping of %s, got %s", strings.Join(known, ", "), Describe(n))
		return nil
	}
	out := make(map[string]Entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Fail(k.Line, path, "keys must be plain field names, got %s; known fields here: %s", Describe(k), strings.Join(known, ", "))
			continue
		}
		name := k.Value
		if k.Tag == "!!merge" {
			d.Fail(k.Line, path, "YAML merge keys (<<) are not supported; write the fields out in full")
			continue
		}
		if !Contains(known, name) {
			hint := ""
			if c := Closest(name, known); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			d.Fail(k.Line, Join(path, FieldName(name)), "unknown field %s%s; known fields here: %s", Quote(name), hint, strings.Join(known, ", "))
			continue
		}
		if prev, dup := out[name]; dup {
			d.Fail(k.Line, Join(path, FieldName(name)), "set twice (first at line %d); keep only one", prev.Key.Line)
			continue
		}
		out[name] = Entry{Key: k, Val: Resolve(v)}
	}
	return out
}

// Block is one decoded mapping plus where its fields are recorded: problems use the
// absolute Path, Pos records lines under the path Rel, relative to the owner of Pos.
type Block struct {
	// D collects the problems.
	D *Decoder
	// Fields is the mapping as Decoder.Fields read it.
	Fields map[string]Entry
	// Path is the block's dotted path from the top of the file, for problems.
	Path string
	// Rel is the block's path relative to whoever owns Pos.
	Rel string
	// Pos receives the line of every field taken, by dotted path under Rel; nil records
	// nothing.
	Pos map[string]int
	// Line is the block's own line, where a problem about an absent field belongs.
	Line int
}

// record notes the line of field (relative to Rel) when the block has a Pos.
func (b Block) record(field string, line int) {
	if b.Pos != nil {
		b.Pos[Join(b.Rel, field)] = line
	}
}

// Has reports whether the field is present and not null.
func (b Block) Has(name string) bool {
	e, ok := b.Fields[name]
	return ok && !IsNull(e.Val)
}

// LineOf is the line of the field's key, or the block's own line when it is absent.
func (b Block) LineOf(name string) int {
	if e, ok := b.Fields[name]; ok {
		return e.Key.Line
	}
	return b.Line
}

// Take returns the Entry for name and records its line. ok is false when the field is
// absent or its mapping failed to decode.
func (b Block) Take(name string) (Entry, bool) {
	e, ok := b.Fields[name]
	if ok {
		b.record(name, e.Key.Line)
	}
	return e, ok
}

// Scalar returns the scalar value node of name, reporting any other node kind.
func (b Block) Scalar(name, want string) (*yaml.Node, bool) {
	e, ok := b.Fields[name]
	if !ok {
		return nil, false
	}
	if e.Val.Kind != yaml.ScalarNode {
		b.D.Fail(e.Val.Line, Join(b.Path, name), "must be %s, got %s", want, Describe(e.Val))
		return nil, false
	}
	return e.Val, true
}

// Str decodes a string field. Any scalar is accepted as its text, so "port-like" values
// such as database: 2024 still work; null leaves dst empty.
func (b Block) Str(name string, dst *string) bool {
	n, ok := b.Scalar(name, "a string")
	if !ok {
		return false
	}
	b.Take(name)
	if !IsNull(n) {
		*dst = n.Value
	}
	return true
}

// Integer decodes a whole-number field.
func (b Block) Integer(name string, dst *int) bool {
	n, ok := b.Scalar(name, "a whole number")
	if !ok {
		return false
	}
	if n.Tag != "!!int" {
		b.D.Fail(n.Line, Join(b.Path, name), "must be a whole number without quotes, got %s; write e.g. %s: 5432 or remove the line", Describe(n), name)
		return false
	}
	v, err := decimal(n.Value)
	if err != nil {
		// YAML's other forms (0x1F, 0o17, 1_000, and 0123, which YAML reads as octal).
		if err := n.Decode(&v); err != nil {
			b.D.Fail(n.Line, Join(b.Path, name), "is not a whole number that fits in an int; write a smaller number")
			return false
		}
	}
	*dst = v
	b.Take(name)
	return true
}

// decimal reads a plain decimal without leading zeros, the usual way to write a whole
// number, without the YAML decoder's reflection; any other form is an error.
func decimal(s string) (int, error) {
	digits := strings.TrimPrefix(s, "-")
	if len(digits) > 1 && digits[0] == '0' || strings.HasPrefix(digits, "+") {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}

// Boolean decodes a true/false field.
func (b Block) Boolean(name string, dst *bool) bool {
	n, ok := b.Scalar(name, "true or false")
	if !ok {
		return false
	}
	if n.Tag != "!!bool" {
		b.D.Fail(n.Line, Join(b.Path, name), "must be true or false, got %s (yes, no, on and off are strings in YAML 1.2)", Describe(n))
		return false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		b.D.Fail(n.Line, Join(b.Path, name), "must be true or false")
		return false
	}
	*dst = v
	b.Take(name)
	return true
}

// Duration decodes a duration (see ParseDuration). A bare number is refused: "grace: 15" could mean
// seconds or minutes, and guessing wrong here changes how long a revoked credential lives.
func (b Block) Duration(name string, dst *time.Duration) bool {
	n, ok := b.Scalar(name, "a duration")
	if !ok {
		return false
	}
	switch n.Tag {
	case "!!null":
		b.D.Fail(n.Line, Join(b.Path, name), "has no value; give a duration such as 15m or 0s, or remove the line")
		return false
	case "!!int", "!!float":
		b.D.Fail(n.Line, Join(b.Path, name), "a bare number has no unit; add one, e.g. %[1]ss, %[1]sm or %[1]sh (0s for zero)", Displayable(n.Value, MaxValueRunes))
		return false
	}
	v, err := ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		b.D.Fail(n.Line, Join(b.Path, name), "%s is not a duration; use a number with a unit: 0s, 90s, 15m, 1h30m, 30d", Quote(n.Value))
		return false
	}
	*dst = v
	b.Take(name)
	return true
}

// StrList decodes a list of strings. A bad item is kept as "" so the indexes of the others
// still match the file.
func (b Block) StrList(name string, dst *[]string) bool {
	e, ok := b.Fields[name]
	if !ok {
		return false
	}
	if IsNull(e.Val) {
		b.Take(name)
		return true
	}
	if e.Val.Kind != yaml.SequenceNode {
		b.D.Fail(e.Val.Line, Join(b.Path, name), "must be a list, e.g. %s: [a, b], got %s", name, Describe(e.Val))
		return false
	}
	b.Take(name)
	out := make([]string, 0, len(e.Val.Content))
	for i, item := range e.Val.Content {
		item = Resolve(item)
		itemField := fmt.Sprintf("%s[%d]", name, i)
		b.record(itemField, item.Line)
		if item.Kind != yaml.ScalarNode || IsNull(item) {
			b.D.Fail(item.Line, Join(b.Path, itemField), "must be a string, got %s", Describe(item))
			out = append(out, "")
			continue
		}
		out = append(out, item.Value)
	}
	*dst = out
	return true
}

// Sub returns the nested mapping name as a Block. ok is false when the field is absent,
// null or not a mapping; the field's line is recorded either way so a "required" problem
// can point at it.
func (b Block) Sub(name string, known []string) (Block, bool) {
	e, ok := b.Take(name)
	if !ok || IsNull(e.Val) {
		return Block{}, false
	}
	path := Join(b.Path, name)
	f := b.D.Fields(e.Val, path, known)
	if f == nil {
		return Block{}, false
	}
	return Block{D: b.D, Fields: f, Path: path, Rel: Join(b.Rel, name), Pos: b.Pos, Line: e.Val.Line}, true
}

// Contains reports whether list holds v.
func Contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Number decodes a decimal number field (an integer is fine too).
func (b Block) Number(name string, dst *float64) bool {
	n, ok := b.Scalar(name, "a number")
	if !ok {
		return false
	}
	if n.Tag != "!!float" && n.Tag != "!!int" {
		b.D.Fail(n.Line, Join(b.Path, name), "must be a number without quotes, got %s; write e.g. %s: 0.66", Describe(n), name)
		return false
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		b.D.Fail(n.Line, Join(b.Path, name), "is not a number")
		return false
	}
	*dst = v
	b.Take(name)
	return true
}

// IntList decodes a list of whole numbers (HTTP statuses).
func (b Block) IntList(name string, dst *[]int) bool {
	e, ok := b.Fields[name]
	if !ok {
		return false
	}
	field := Join(b.Path, name)
	if IsNull(e.Val) {
		b.Take(name)
		return true
	}
	if e.Val.Kind != yaml.SequenceNode {
		b.D.Fail(e.Val.Line, field, "must be a list of numbers, e.g. %s: [200, 201], got %s", name, Describe(e.Val))
		return false
	}
	b.Take(name)
	out := make([]int, 0, len(e.Val.Content))
	for i, item := range e.Val.Content {
		item = Resolve(item)
		var v int
		if item.Kind != yaml.ScalarNode || item.Tag != "!!int" || item.Decode(&v) != nil {
			b.D.Fail(item.Line, fmt.Sprintf("%s[%d]", field, i), "must be a whole number, got %s", Describe(item))
			continue
		}
		out = append(out, v)
	}
	*dst = out
	return true
}

// StrMap decodes a mapping of strings to strings (HTTP headers). Keys keep their case.
func (b Block) StrMap(name string, dst *map[string]string) bool {
	e, ok := b.Take(name)
	if !ok || IsNull(e.Val) {
		return ok
	}
	field := Join(b.Path, name)
	if e.Val.Kind != yaml.MappingNode {
		b.D.Fail(e.Val.Line, field, "must be a mapping of names to values, got %s", Describe(e.Val))
		return false
	}
	out := make(map[string]string, len(e.Val.Content)/2)
	for i := 0; i+1 < len(e.Val.Content); i += 2 {
		k, v := e.Val.Content[i], Resolve(e.Val.Content[i+1])
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || IsNull(v) {
			b.D.Fail(k.Line, Join(field, k.Value), "must be a name with a string value")
			continue
		}
		if _, dup := out[k.Value]; dup {
			b.D.Fail(k.Line, Join(field, k.Value), "set twice; keep only one")
			continue
		}
		out[k.Value] = v.Value
	}
	*dst = out
	return true
}
