package config

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

// maxRefineLines bounds the prefix search in syntaxLine; past it the file is unusually
// long and yaml.v3's own line is reported.
const maxRefineLines = 2000

// syntax records a YAML syntax error, with its line moved from the message into
// Problem.Line.
func (d *decoder) syntax(err error, data []byte) {
	line, msg := splitYAMLError(err)
	line = syntaxLine(data, line, msg)
	msg = displayable(msg, maxMessageRunes)
	d.fail(line, "", "YAML syntax error: %s; fix the syntax (indent with spaces, close brackets and quotes, quote values that start with @, * or &)", msg)
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
func syntaxLine(data []byte, reported int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxRefineLines {
		return reported
	}
	start := max(reported-1, 1)
	var prefix []byte
	for i := 0; i < start-1 && i < len(lines); i++ {
		prefix = append(prefix, lines[i]...)
	}
	for n := start; n <= len(lines); n++ {
		prefix = append(prefix, lines[n-1]...)
		err := parseAll(prefix)
		if err == nil {
			continue
		}
		if _, got := splitYAMLError(err); got == msg {
			return n
		}
	}
	return reported
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
