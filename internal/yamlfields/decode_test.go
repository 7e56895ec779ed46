package yamlfields

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func node(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestFieldsReportsEveryProblemWithItsLine(t *testing.T) {
	d := &Decoder{Report: Report{File: "f.yaml"}}
	fields := d.Fields(node(t, "name: a\nnmae: b\nname: c\nshared: &s 5m\nwait: *s\n<<: {x: 1}\n"), "top", []string{"name", "shared", "wait"})
	got := Summary("test file", d.Problems)
	for _, want := range []string{
		"test file f.yaml has 3 problem(s):",
		`f.yaml:2: top.nmae: unknown field "nmae" (did you mean "name"?); known fields here: name, shared, wait`,
		"f.yaml:3: top.name: set twice (first at line 1); keep only one",
		"f.yaml:6: top: YAML merge keys (<<) are not supported",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	var wait time.Duration
	b := Block{D: d, Fields: fields, Path: "top", Pos: map[string]int{}}
	if !b.Duration("wait", &wait) || wait != 5*time.Minute || b.Pos["wait"] != 5 {
		t.Errorf("alias: wait = %s at line %d, want 5m at line 5", wait, b.Pos["wait"])
	}
	if fields["name"].Val.Value != "a" {
		t.Errorf("a repeated key replaced the first: %q", fields["name"].Val.Value)
	}
}

func TestBlockValuesAndLines(t *testing.T) {
	d := &Decoder{Report: Report{File: "f.yaml"}}
	n := node(t, "grace: 1d12h\nport: \"5432\"\nbare: 15\nnames: [a, {b: c}]\n")
	b := Block{D: d, Fields: d.Fields(n, "s", []string{"grace", "port", "bare", "names", "absent"}), Path: "s", Line: 1}
	var grace, bare time.Duration
	var port int
	var names []string
	if !b.Duration("grace", &grace) || grace != 36*time.Hour {
		t.Errorf("grace = %s, want 36h from 1d12h", grace)
	}
	if b.Integer("port", &port) || b.Duration("bare", &bare) {
		t.Error("a quoted port and a bare duration were accepted")
	}
	b.StrList("names", &names)
	if len(names) != 2 || names[0] != "a" || names[1] != "" {
		t.Errorf("names = %q, want a bad item kept as \"\" so indexes match the file", names)
	}
	if b.Has("absent") || b.LineOf("absent") != 1 || b.LineOf("names") != 4 {
		t.Errorf("absent field: has %v line %d; names line %d", b.Has("absent"), b.LineOf("absent"), b.LineOf("names"))
	}
	got := Summary("test file", d.Problems)
	for _, want := range []string{
		"f.yaml:2: s.port: must be a whole number without quotes, got a string",
		"f.yaml:3: s.bare: a bare number has no unit",
		"f.yaml:4: s.names[1]: must be a string, got a mapping",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if kept := d.Suppress([]Problem{{Field: "s.port"}, {Field: "s.port.x"}, {Field: "s.grace"}}); len(kept) != 1 || kept[0].Field != "s.grace" {
		t.Errorf("Suppress kept %v, want only s.grace", kept)
	}
}

// TestIntegerMatchesYAML: the direct reading of plain decimals gives what the YAML
// decoder gives, for every form YAML accepts as a whole number.
func TestIntegerMatchesYAML(t *testing.T) {
	for _, in := range []string{"5432", "0", "-7", "+5", "0123", "-0123", "007", "1_000", "0x1F", "0o17", "9223372036854775807"} {
		var want map[string]int
		if err := yaml.Unmarshal([]byte("port: "+in), &want); err != nil {
			t.Fatalf("%s: yaml: %v", in, err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte("port: "+in), &doc); err != nil {
			t.Fatal(err)
		}
		d := &Decoder{}
		b := Block{D: d, Fields: d.Fields(doc.Content[0], "", []string{"port"})}
		var got int
		if !b.Integer("port", &got) || len(d.Problems) != 0 {
			t.Fatalf("%s: Integer failed: %v", in, d.Problems)
		}
		if got != want["port"] {
			t.Errorf("%s: Integer read %d, the YAML decoder %d", in, got, want["port"])
		}
	}
}
