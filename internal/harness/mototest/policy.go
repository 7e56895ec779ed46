package mototest

import (
	"encoding/json"
	"fmt"
)

// PolicyActions returns the actions an IAM policy document allows, statement by statement
// in order, so that a test can run code as a principal holding exactly a documented
// policy's actions. Action may be one string or a list, as IAM allows. A statement that
// denies, or names NotAction, is an error: its meaning is not a list of actions.
func PolicyActions(doc []byte) ([]string, error) {
	var policy struct {
		Statement []struct {
			Sid       string
			Effect    string
			Action    json.RawMessage
			NotAction json.RawMessage
		}
	}
	if err := json.Unmarshal(doc, &policy); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	var actions []string
	for i, s := range policy.Statement {
		where := fmt.Sprintf("statement %d %q", i+1, s.Sid)
		if s.Effect != "Allow" || s.NotAction != nil {
			return nil, fmt.Errorf("policy document: %s: only Allow statements with Action are understood", where)
		}
		var one string
		var many []string
		switch {
		case json.Unmarshal(s.Action, &one) == nil:
			many = []string{one}
		case json.Unmarshal(s.Action, &many) == nil:
		default:
			return nil, fmt.Errorf("policy document: %s: Action is neither a string nor a list of strings", where)
		}
		if len(many) == 0 {
			return nil, fmt.Errorf("policy document: %s: no Action", where)
		}
		actions = append(actions, many...)
	}
	if len(actions) == 0 {
		return nil, fmt.Errorf("policy document: no statements")
	}
	return actions, nil
}

// AllowActions returns a policy document with one statement allowing actions on the
// resource "*".
//
// "*" because moto checks Secrets Manager calls, and IAM calls on users and access keys,
// against the resource "*" only (moto 5: a service's responses name a resource only for
// IAM roles, STS AssumeRole, SQS and S3): a policy whose Resource names ARNs grants
// nothing there. Under moto a documented policy can therefore be tested for its actions,
// which must be enough and each needed, but not for its resource scoping or its
// conditions, which moto ignores on these calls (it passes no condition values to them).
func AllowActions(actions ...string) string {
	doc, err := json.Marshal(map[string]any{
		"Version":   "2012-10-17",
		"Statement": []any{map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"}},
	})
	if err != nil {
		panic(err) // strings always marshal
	}
	return string(doc)
}
