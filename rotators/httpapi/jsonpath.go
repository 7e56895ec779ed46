package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// jsonPath is a parsed path into a JSON document: "data.id", "keys[0].secret", "[1]".
// It is deliberately small (object members and array elements, nothing else) because it
// only has to find two strings in a create response.
type jsonPath struct {
	text  string
	steps []pathStep
}

// pathStep is one object member (key) or one array element (index, when isIndex).
type pathStep struct {
	key     string
	index   int
	isIndex bool
}

func (s pathStep) String() string {
	if s.isIndex {
		return fmt.Sprintf("[%d]", s.index)
	}
	return strconv.Quote(s.key)
}

// parsePath parses a dotted path: member names separated by '.', each followed by any
// number of [n] array indexes. A path may start with an index, for a response that is an
// array. Member names cannot contain '.' or '['.
func parsePath(text string) (jsonPath, error) {
	p := jsonPath{text: text}
	if text == "" {
		return p, errors.New("is empty")
	}
	for i, seg := range strings.Split(text, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if rest != "" || strings.HasSuffix(seg, "[") {
			rest = "[" + rest
		}
		switch {
		case name == "" && (i > 0 || rest == ""):
			return p, fmt.Errorf("%q has an empty member name; write members separated by single dots, e.g. data.keys[0].id", text)
		case strings.ContainsAny(name, "]"):
			return p, fmt.Errorf("%q has a stray ']'", text)
		case name != "":
			p.steps = append(p.steps, pathStep{key: name})
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if !strings.HasPrefix(rest, "[") || end < 0 {
				return p, fmt.Errorf("%q: after a member name only [n] indexes may follow", text)
			}
			n, err := strconv.Atoi(rest[1:end])
			if err != nil || n < 0 || rest[1] == '+' {
				return p, fmt.Errorf("%q: %q is not an array index (a number from 0)", text, rest[:end+1])
			}
			p.steps = append(p.steps, pathStep{index: n, isIndex: true})
			rest = rest[end+1:]
		}
	}
	return p, nil
}

// lookup finds the value at the path in doc (decoded with UseNumber). Errors say where
// the path stops matching and never quote a value, since the document holds a secret.
func (p jsonPath) lookup(doc any) (any, error) {
	v := doc
	for i, s := range p.steps {
		at := func() string {
			if i == 0 {
				return "the top level"
			}
			return fmt.Sprintf("%q", pathText(p.steps[:i]))
		}
		if s.isIndex {
			arr, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("%s is %s, not an array", at(), kind(v))
			}
			if s.index >= len(arr) {
				return nil, fmt.Errorf("%s has %d elements, so there is no [%d]", at(), len(arr), s.index)
			}
			v = arr[s.index]
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is %s, not an object", at(), kind(v))
		}
		if v, ok = obj[s.key]; !ok {
			return nil, fmt.Errorf("%s has no member %q", at(), s.key)
		}
	}
	return v, nil
}

// str returns the string at the path. Numbers are accepted too (as written in the
// document), since some APIs number their keys.
func (p jsonPath) str(doc any) (string, error) {
	v, err := p.lookup(doc)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", errors.New("the value is an empty string")
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("the value is %s, not a string", kind(v))
}

// decodeJSON decodes a whole document, keeping numbers as written.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		// The decoder's messages can quote the offending input; say only what failed.
		return nil, errors.New("the response is not valid JSON")
	}
	if dec.More() {
		return nil, errors.New("the response holds more than one JSON value")
	}
	return doc, nil
}

func pathText(steps []pathStep) string {
	var b strings.Builder
	for _, s := range steps {
		if s.isIndex {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
