package httpapi

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for text, want := range map[string]string{
		"id":                "id",
		"data.id":           "data.id",
		"data.keys[0].id":   "data.keys[0].id",
		"[1].secret":        "[1].secret",
		"matrix[2][10]":     "matrix[2][10]",
		"data.api-key_2.id": "data.api-key_2.id",
	} {
		p, err := parsePath(text)
		if err != nil {
			t.Errorf("parsePath(%q): %v", text, err)
			continue
		}
		if got := pathText(p.steps); got != want {
			t.Errorf("parsePath(%q) = %s, want %s", text, got, want)
		}
	}
	for text, msg := range map[string]string{
		"":          "is empty",
		".":         "empty member name",
		"data.":     "empty member name",
		".data":     "empty member name",
		"data..id":  "empty member name",
		"data[":     "only [n] indexes may follow",
		"data[0":    "only [n] indexes may follow",
		"data[x]":   "not an array index",
		"data[-1]":  "not an array index",
		"data[+1]":  "not an array index",
		"data[]":    "not an array index",
		"data]":     "stray ']'",
		"data[0]id": "only [n] indexes may follow",
	} {
		if _, err := parsePath(text); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("parsePath(%q) = %v, want an error mentioning %q", text, err, msg)
		}
	}
}

func TestLookup(t *testing.T) {
	const doc = `{
		"data": {"id": "key_1", "secret": "sk_hidden", "n": 42, "null": null, "flag": true, "empty": "",
		         "keys": [{"id": "key_a"}, {"id": "key_b", "secret": "sk_b"}]},
		"list": [["x", "y"], ["z"]]
	}`
	parsed, err := decodeJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"data.id":             "key_1",
		"data.secret":         "sk_hidden",
		"data.keys[1].secret": "sk_b",
		"data.keys[0].id":     "key_a",
		"list[1][0]":          "z",
		"data.n":              "42", // numeric IDs are accepted as written
	} {
		got, err := mustPath(t, path).str(parsed)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	for path, msg := range map[string]string{
		"data.name":        `"data" has no member "name"`,
		"data.keys[2].id":  `"data.keys" has 2 elements, so there is no [2]`,
		"data.id.value":    `"data.id" is a string, not an object`,
		"data[0]":          `"data" is an object, not an array`,
		"[0]":              "the top level is an object, not an array",
		"data.null":        "the value is null, not a string",
		"data.flag":        "the value is a boolean, not a string",
		"data.keys":        "the value is an array, not a string",
		"data.keys[0]":     "the value is an object, not a string",
		"data.empty":       "the value is an empty string",
		"data.null.id":     `"data.null" is null, not an object`,
		"list[0][5]":       `"list[0]" has 2 elements`,
		"missing.deep.key": `the top level has no member "missing"`,
	} {
		_, err := mustPath(t, path).str(parsed)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one mentioning %q", path, err, msg)
			continue
		}
		for _, value := range []string{"sk_hidden", "sk_b", "key_1"} {
			if strings.Contains(err.Error(), value) {
				t.Errorf("%s: error %q quotes a value of the document", path, err)
			}
		}
	}
}

func TestDecodeJSONQuotesNothing(t *testing.T) {
	for _, body := range []string{`{"secret": "sk_hidden"`, `sk_hidden`, `{"a":1} {"secret":"sk_hidden"}`, ``} {
		_, err := decodeJSON([]byte(body))
		if err == nil {
			t.Errorf("decodeJSON(%q) succeeded", body)
			continue
		}
		if strings.Contains(err.Error(), "sk_hidden") {
			t.Errorf("decodeJSON error %q quotes the body", err)
		}
	}
}

func mustPath(t *testing.T, text string) jsonPath {
	t.Helper()
	p, err := parsePath(text)
	if err != nil {
		t.Fatalf("parsePath(%q): %v", text, err)
	}
	return p
}
