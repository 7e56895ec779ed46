package inventory

import (
	"testing"
)

func TestProblemString(t *testing.T) {
	tests := map[string]struct {
		p    Problem
		want string
	}{
		"full":     {Problem{File: "inv.yaml", Line: 7, Field: "secrets[0].kind", Message: "required"}, "inv.yaml:7: secrets[0].kind: required"},
		"no line":  {Problem{File: "inv.yaml", Field: "secrets[0].kind", Message: "required"}, "inv.yaml: secrets[0].kind: required"},
		"no field": {Problem{File: "inv.yaml", Line: 3, Message: "YAML syntax error"}, "inv.yaml:3: YAML syntax error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorsSortedByLine(t *testing.T) {
	errs := Errors{
		{File: "inv.yaml", Line: 9, Field: "b", Message: "second"},
		{File: "inv.yaml", Line: 2, Field: "a", Message: "first"},
		{File: "inv.yaml", Line: 9, Field: "c", Message: "third"},
	}
	want := "inventory inv.yaml has 3 problem(s):\n" +
		"  inv.yaml:2: a: first\n" +
		"  inv.yaml:9: b: second\n" +
		"  inv.yaml:9: c: third"
	if got := errs.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if (Errors{}).orNil() != nil {
		t.Errorf("an empty Errors must become a nil error")
	}
}
