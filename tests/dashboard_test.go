package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dashboardFile is the Grafana dashboard shipped in deploy/grafana (built by the
// deploy/grafana package, whose tests check its structure).
const dashboardFile = "../deploy/grafana/keyturn.json"

// dashboardJSON is as much of a dashboard as the queries need. Rows that are collapsed
// hold their panels inside them.
type dashboardJSON struct {
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// labelValues is a Grafana variable query: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`)

// dashboardQueries returns every PromQL expression of the dashboard: each panel's
// queries and each query variable's selector.
func dashboardQueries(t *testing.T) []promQuery {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardJSON
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardFile, err)
	}
	var out []promQuery
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			for _, q := range p.Targets {
				out = append(out, promQuery{where: fmt.Sprintf("panel %q query %s", p.Title, q.RefID), expr: q.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %v is not label_values(selector, label)", v.Name, v.Query)
			continue
		}
		out = append(out, promQuery{where: "variable " + v.Name, expr: m[1]})
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries read from %s", len(out), dashboardFile)
	}
	return out
}

// grafanaVariable is a dashboard variable in a query: $name or ${name} (${name:format}).
var grafanaVariable = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// asPromQL replaces Grafana's variables with values Prometheus accepts: a duration for
// the interval and range ones, a plain word for the others (they only appear in label
// matchers).
func asPromQL(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		default:
			return "value"
		}
	})
}

// TestDashboardQueriesPromtool: every query of the dashboard is valid PromQL. promtool
// cannot read a dashboard, so each expression (variables replaced by sample values)
// becomes a recording rule of a temporary rule file that `promtool check rules` parses.
func TestDashboardQueriesPromtool(t *testing.T) {
	promtool := prometheusBinary(t, "promtool")
	queries := dashboardQueries(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		rules = append(rules, rule{Record: fmt.Sprintf("keyturn_dashboard_query_%d", i), Expr: asPromQL(q.expr)})
	}
	file := map[string]any{"groups": []map[string]any{{"name": "keyturn-dashboard", "rules": rules}}}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		// promtool names the rule by its index in the group: say which query that is.
		var where []string
		for i, q := range queries {
			where = append(where, fmt.Sprintf("  rule %d: %s: %s", i, q.where, asPromQL(q.expr)))
		}
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s\nthe queries:\n%s", err, out, strings.Join(where, "\n"))
	}
	t.Logf("promtool check rules on %d dashboard queries:\n%s", len(queries), out)
}

// TestAsPromQL pins the variable replacement.
func TestAsPromQL(t *testing.T) {
	got := asPromQL(`rate(x{job="$job", instance=~"${instance}", kind=~"${kind:regex}"}[$__rate_interval]) + y[$__range]`)
	want := `rate(x{job="value", instance=~"value", kind=~"value"}[5m]) + y[5m]`
	if got != want {
		t.Errorf("asPromQL = %s, want %s", got, want)
	}
}
