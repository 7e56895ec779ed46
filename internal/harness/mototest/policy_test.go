package mototest

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestPolicyActionsReadsOneOrManyActionsPerStatement(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Many","Effect":"Allow","Action":["svc:A","svc:B"],"Resource":"arn:aws:svc:::x/*"},
		{"Sid":"One","Effect":"Allow","Action":"svc:C","Resource":"arn:aws:svc:::x/*",
		 "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["k"]}}}]}`
	got, err := PolicyActions([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"svc:A", "svc:B", "svc:C"}; !slices.Equal(got, want) {
		t.Fatalf("PolicyActions = %v, want %v", got, want)
	}
}

func TestPolicyActionsRefusesWhatIsNotAListOfAllowedActions(t *testing.T) {
	for name, doc := range map[string]string{
		"deny":          `{"Statement":[{"Effect":"Deny","Action":"svc:A","Resource":"*"}]}`,
		"not action":    `{"Statement":[{"Effect":"Allow","NotAction":"svc:A","Resource":"*"}]}`,
		"no action":     `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		"no statements": `{"Statement":[]}`,
		"not json":      `{`,
	} {
		if got, err := PolicyActions([]byte(doc)); err == nil {
			t.Errorf("%s: PolicyActions = %v, want an error", name, got)
		}
	}
}

func TestAllowActionsAllowsExactlyThemOnEveryResource(t *testing.T) {
	var doc struct {
		Statement []struct {
			Effect, Resource string
			Action           []string
		}
	}
	if err := json.Unmarshal([]byte(AllowActions("svc:A", "svc:B")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statement) != 1 {
		t.Fatalf("%d statements, want 1", len(doc.Statement))
	}
	s := doc.Statement[0]
	if s.Effect != "Allow" || s.Resource != "*" || !slices.Equal(s.Action, []string{"svc:A", "svc:B"}) {
		t.Fatalf("statement %+v, want Allow svc:A and svc:B on *", s)
	}
}
