package inventory

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// pgWith is a valid postgres secret with extra fields, as a list item.
func pgWith(id, role, extra string) string {
	return "  - id: " + id + "\n    kind: postgres\n" + extra +
		"    postgres: {host: localhost, sslmode: disable, database: d, role: " + role + ", admin: {username: k, password: \"env:PW\"}}\n"
}

func TestConsumersAndSensitivity(t *testing.T) {
	inv, err := Load(writeTemp(t, "version: 1\ndefaults:\n  sensitivity: high\n  grace: 1h\nsecrets:\n"+
		pgWith("a/b", "a", "    sensitivity: critical\n    consumers:\n      - name: orders-api\n        refresh: 5m\n      - name: nightly.report\n        refresh: 1d\n    grace: 2d\n")+
		pgWith("c/d", "c", "")))
	if err != nil {
		t.Fatal(err)
	}
	a, c := inv.Secrets[0], inv.Secrets[1]
	if a.Sensitivity != SensitivityCritical || c.Sensitivity != SensitivityHigh {
		t.Errorf("sensitivity %q and %q, want critical (own) and high (defaults)", a.Sensitivity, c.Sensitivity)
	}
	want := []Consumer{{Name: "orders-api", Refresh: 5 * time.Minute, Line: 10}, {Name: "nightly.report", Refresh: Day, Line: 12}}
	if len(a.Consumers) != 2 || a.Consumers[0] != want[0] || a.Consumers[1] != want[1] {
		t.Errorf("consumers %+v, want %+v", a.Consumers, want)
	}
	if s, ok := a.SlowestConsumer(); !ok || s.Name != "nightly.report" {
		t.Errorf("slowest %+v %v, want nightly.report", s, ok)
	}
	if len(c.Consumers) != 0 {
		t.Errorf("c/d lists no consumers, got %+v", c.Consumers)
	}
	if w := inv.Warnings(); len(w) != 0 {
		t.Errorf("grace 2d covers a 1d refresh with its margin, yet: %v", w)
	}
}

func TestConsumerProblems(t *testing.T) {
	tests := map[string]struct {
		text string
		want []string // "line field: fragment"
	}{
		"sensitivity": {
			text: "version: 1\ndefaults:\n  sensitivity: secret\nsecrets:\n" + pgWith("a/b", "a", "    sensitivity: High\n"),
			want: []string{`3 defaults.sensitivity: "secret" is not a sensitivity; allowed: "low", "medium", "high", "critical"`,
				`7 secrets[0].sensitivity: "High" is not a sensitivity; allowed: "low", "medium", "high", "critical"`},
		},
		"consumers": {
			text: "version: 1\nsecrets:\n" + pgWith("a/b", "a", "    consumers:\n"+
				"      - name: api\n        refresh: 5m\n"+ // 6, 7
				"      - name: api\n        refresh: 1m\n"+ // 8, 9: duplicate
				"      - refresh: 1m\n"+ // 10: no name
				"      - name: \"has space\"\n        refresh: 0s\n"+ // 11, 12
				"      - name: worker\n"+ // 13: no refresh
				"      - name: batch\n        refresh: 15\n"+ // 14, 15: bare number
				"      - name: x\n        ttl: 5m\n"), // 16, 17: unknown field
			want: []string{
				`8 secrets[0].consumers[1].name: consumer "api" is listed twice (first at line 6)`,
				"10 secrets[0].consumers[2].name: required",
				`11 secrets[0].consumers[3].name: "has space" is not a valid consumer name`,
				"12 secrets[0].consumers[3].refresh: must be a positive duration",
				"13 secrets[0].consumers[4].refresh: required; how often worker re-reads the secret",
				"15 secrets[0].consumers[5].refresh: a bare number has no unit",
				"16 secrets[0].consumers[6].refresh: required; how often x re-reads the secret",
				`17 secrets[0].consumers[6].ttl: unknown field "ttl"`,
			},
		},
		"not a list": {
			text: "version: 1\nsecrets:\n" + pgWith("a/b", "a", "    consumers: api\n"),
			want: []string{"5 secrets[0].consumers: must be a list of consumers"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTemp(t, tc.text))
			if err == nil {
				t.Fatal("Load accepted the inventory")
			}
			var got []string
			for _, p := range problemsOf(t, err) {
				got = append(got, strconv.Itoa(p.Line)+" "+p.Field+": "+p.Message)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

func TestGraceMargin(t *testing.T) {
	for refresh, want := range map[time.Duration]time.Duration{
		10 * time.Second: 40 * time.Second, 2 * time.Minute: 2*time.Minute + 30*time.Second,
		time.Hour: 75 * time.Minute, Day: 30 * time.Hour,
	} {
		if got := MinGraceFor(refresh); got != want {
			t.Errorf("MinGraceFor(%v) = %v, want %v", refresh, got, want)
		}
		if got := maxRefreshFor(want); MinGraceFor(got) > want {
			t.Errorf("maxRefreshFor(%v) = %v, which needs grace %v", want, got, MinGraceFor(got))
		}
	}
}

// A grace period that does not cover the slowest consumer's refresh plus the margin is a
// warning, never a problem: Load accepts the inventory, and Warnings names the secret,
// the consumer, the numbers and the fix.
func TestGraceWarning(t *testing.T) {
	inv, err := Load(writeTemp(t, "version: 1\ndefaults:\n  grace: 10m\nsecrets:\n"+
		pgWith("a/b", "a", "    consumers:\n      - name: api\n        refresh: 1m\n      - name: reports\n        refresh: 1h\n")+ // 5-12: inherits 10m
		pgWith("c/d", "c", "    grace: 20s\n    consumers:\n      - name: fast\n        refresh: 1s\n")+ // 13-18: own grace under the floor
		pgWith("e/f", "e", "    grace: 75m\n    consumers:\n      - name: reports\n        refresh: 1h\n")+ // exactly enough
		pgWith("g/h", "g", "")))
	if err != nil {
		t.Fatalf("a warning refused the inventory: %v", err)
	}
	w := inv.Warnings()
	if len(w) != 2 {
		t.Fatalf("got %d warnings, want 2: %v", len(w), w)
	}
	for i, want := range []struct {
		line  int
		field string
		text  string
	}{
		{11, "secrets[0].consumers[1].refresh", "secret a/b: grace 10m (from the defaults block, line 3) is shorter than consumer reports's refresh 1h plus a margin of 15m, so the old credential may be revoked before reports has read the new one; raise grace to at least 1h15m or make reports refresh at least every 8m"},
		{18, "secrets[1].consumers[0].refresh", "secret c/d: grace 20s is shorter than consumer fast's refresh 1s plus a margin of 30s, so the old credential may be revoked before fast has read the new one; raise grace to at least 31s (a grace under 30s leaves no consumer time to refresh)"},
	} {
		if w[i].Line != want.line || w[i].Field != want.field || w[i].Message != want.text || w[i].Severity != SeverityWarning {
			t.Errorf("warning %d:\n got %d %s: %s (severity %d)\nwant %d %s: %s", i, w[i].Line, w[i].Field, w[i].Message, w[i].Severity, want.line, want.field, want.text)
		}
	}
	if s := w[0].String(); !strings.Contains(s, ":11: warning: secrets[0].consumers[1].refresh: secret a/b") {
		t.Errorf("String() = %q", s)
	}
}
