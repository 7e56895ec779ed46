package tests

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keyturn/keyturn/internal/cli"
)

// monitoredMetric is a metric the alert rules (deploy/prometheus) or the dashboard
// (deploy/grafana) read.
type monitoredMetric struct {
	name string
	// onlyWhen says when the worker exports the metric, if that is something
	// TestMonitoredMetricsExported does not bring about; such a metric is only looked up
	// among the names the telemetry package declares (TestMonitoredMetricsDeclared).
	onlyWhen string
	// prometheus marks a series Prometheus records itself, per scrape target.
	prometheus bool
}

// monitoredMetrics lists, by hand, every metric the rules and the dashboard read. It is
// checked both ways: against the names scanned from their queries (so neither can start
// reading a new metric unnoticed) and against what a real worker exports.
var monitoredMetrics = []monitoredMetric{
	{name: "keyturn_incident_containment_duration_seconds_bucket"},
	{name: "keyturn_incident_running", onlyWhen: "while an incident runs"},
	{name: "keyturn_incident_secrets_total"},
	{name: "keyturn_incidents_total"},
	{name: "keyturn_revokes_outstanding"},
	{name: "keyturn_rotation_step_duration_seconds_bucket"},
	{name: "keyturn_rotation_step_duration_seconds_count"},
	{name: "keyturn_rotations_total"},
	{name: "keyturn_secret_age_seconds"},
	{name: "keyturn_secret_max_age_seconds"},
	{name: "keyturn_secret_overdue"},
	{name: "keyturn_sweep_errors_total", onlyWhen: "once the sweep failed to read a source"},
	{name: "keyturn_sweep_last_success_timestamp_seconds"},
	{name: "temporal_num_pollers"},
	{name: "temporal_worker_task_slots_available"},
	{name: "up", prometheus: true},
}

// promQuery is one PromQL expression the rules or the dashboard run, and where it is.
type promQuery struct {
	where, expr string
}

// monitoringQueries returns every expression of the alert rules and of the dashboard
// (its panels' queries and its variables' label_values selectors).
func monitoringQueries(t *testing.T) []promQuery {
	t.Helper()
	var rules ruleFile
	readYAML(t, filepath.Join(alertsDir, alertsFile), &rules)
	var out []promQuery
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, promQuery{where: "rule " + r.Alert, expr: r.Expr})
		}
	}
	return append(out, dashboardQueries(t)...)
}

// TestMonitoringQueriesUseListedMetrics: the metrics the rules and the dashboard read are
// exactly monitoredMetrics.
func TestMonitoringQueriesUseListedMetrics(t *testing.T) {
	read := map[string][]string{}
	for _, q := range monitoringQueries(t) {
		if strings.Contains(q.expr, "__name__") {
			t.Errorf("%s selects by __name__, which the metric name scan cannot follow: %s", q.where, q.expr)
		}
		for _, name := range metricNames(q.expr) {
			if !slices.Contains(read[name], q.where) {
				read[name] = append(read[name], q.where)
			}
		}
	}
	listed := map[string]bool{}
	for _, m := range monitoredMetrics {
		listed[m.name] = true
		if read[m.name] == nil {
			t.Errorf("monitoredMetrics lists %s, which no rule or dashboard query reads: remove it", m.name)
		}
	}
	for name, where := range read {
		if !listed[name] {
			t.Errorf("%s reads %s, which monitoredMetrics does not list: add it (and check the worker exports it)", strings.Join(where, ", "), name)
		}
	}
}

// TestMonitoredMetricsDeclared: every Keyturn metric the rules and the dashboard read is
// declared by the telemetry package, under its name before Prometheus adds a unit or
// _total (keyturn_rotations for keyturn_rotations_total). It needs no server; the metrics
// a worker only exports under some condition are checked nowhere else.
func TestMonitoredMetricsDeclared(t *testing.T) {
	declared := telemetryStrings(t)
	var missing []string
	for _, m := range monitoredMetrics {
		if m.prometheus || !strings.HasPrefix(m.name, "keyturn_") {
			continue
		}
		if names := instrumentNames(m.name); !slices.ContainsFunc(names, func(n string) bool { return declared[n] }) {
			missing = append(missing, m.name+" (as "+strings.Join(names, " or ")+")")
		}
	}
	if len(missing) > 0 {
		t.Errorf("the rules or the dashboard read %d metric(s) the telemetry package does not declare:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// instrumentNames are the names an instrument exported as name may have been declared
// with: the OpenTelemetry Prometheus exporter adds _total to counters and a unit suffix
// (_seconds) when the instrument has a unit, and a histogram is read through its series.
func instrumentNames(name string) []string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_seconds") {
			name = base
		}
	}
	out := []string{name}
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		out = append(out, base)
		name = base
	}
	if base, ok := strings.CutSuffix(name, "_seconds"); ok {
		out = append(out, base)
	}
	return out
}

// telemetryStrings returns every string literal in the telemetry package's code.
func telemetryStrings(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../telemetry/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in ../telemetry: %v", err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out[s] = true
				}
			}
			return true
		})
	}
	return out
}

// TestMonitoredMetricsExported: every metric the rules and the dashboard read is one a
// real worker exports. It runs `keyturn dev`, rotates the demo certificate (Keyturn's own
// series appear on their first record), contains it in an incident, and scrapes /metrics
// until every metric is there (the secret sweep's first run sets the per-secret gauges;
// the certificate's lifetime gives it a maximum age), or a deadline passes and the test
// names the missing ones.
func TestMonitoredMetricsExported(t *testing.T) {
	state := filepath.Join(t.TempDir(), ".keyturn")
	port, codecPort, metricsPort := freePort(t), freePort(t), freePort(t)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(metricsPort)
	dev := startDev(t, "--no-demo-postgres", "--no-ui", "--home", state,
		"--temporal-port", strconv.Itoa(port), "--codec-port", strconv.Itoa(codecPort), "--metrics-addr", metricsAddr)
	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--home", state, "--grace", "0s"}, strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}
	out.Reset()
	code = cli.Execute(context.Background(), []string{"incident", "start", "--id", "metrics-check", "--select", "id=demo/cert", "--mode", "contain",
		"--reason", "metrics check", "--yes", "--home", state}, strings.NewReader(""), &out, &out)
	if code != 0 {
		t.Fatalf("incident start exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}

	var wanted []string
	for _, m := range monitoredMetrics {
		if m.onlyWhen == "" && !m.prometheus {
			wanted = append(wanted, m.name)
		}
	}
	var missing []string
	var families map[string]*dto.MetricFamily
	deadline := time.Now().Add(exportWait)
	for {
		families = scrape(t, "http://"+metricsAddr+"/metrics")
		missing = slices.DeleteFunc(slices.Clone(wanted), func(name string) bool { return exported(families, name) })
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		var names []string
		for name := range families {
			names = append(names, name)
		}
		slices.Sort(names)
		t.Errorf("the rules or the dashboard read %d metric(s) the worker did not export within %s of a rotation and an incident: %s\nthe worker exports: %s",
			len(missing), exportWait, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
}

// exportWait bounds the wait for the sweep's first run in TestMonitoredMetricsExported.
const exportWait = 90 * time.Second

// exported says whether name is a family on the scrape, or a histogram's sample series.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if families[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if f := families[base]; ok && f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
	}
	return false
}

// PromQL, as far as the scan below needs it: string literals, label matchers in braces,
// range and subquery durations in brackets, and label lists after these keywords.
var (
	promqlString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlBraces     = regexp.MustCompile(`\{[^{}]*\}`)
	promqlBrackets   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlLabelLists = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdent      = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords   = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames scans a PromQL expression for the metric names it selects: every
// identifier left once strings, matchers, ranges and label lists are removed, that is
// neither a keyword nor a function (a name followed by an opening parenthesis). It
// does not handle the {__name__="..."} form, which TestMonitoringQueriesUseListedMetrics
// refuses. The expressions are checked by promtool first, so they are valid PromQL.
func metricNames(expr string) []string {
	expr = promqlString.ReplaceAllString(expr, `""`)
	expr = promqlBraces.ReplaceAllString(expr, " ")
	expr = promqlBrackets.ReplaceAllString(expr, " ")
	expr = promqlLabelLists.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promqlIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if loc[0] > 0 && (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9' || expr[loc[0]-1] == '.') {
			continue // the unit of a duration or the exponent of a number: 15m, 1e3
		}
		if rest := strings.TrimLeft(expr[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		names = append(names, name)
	}
	return names
}

// TestMetricNames pins the scan on expressions shaped like the rules' and the dashboard's.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="keyturn"} == 0 or absent(up{job="keyturn"})`:           {"up", "up"},
		`sum by (job, le) (rate(a_bucket{x=~"a|b"}[30m])) > 1e3`:        {"a_bucket"},
		`histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m:1m])))`: {"b_bucket"},
		"x unless x offset 15m and on (instance) y":                     {"x", "x", "y"},
		"min by (job) (\n  z{label=\"sum(\"}\n) == 0":                   {"z"},
		`time() - (max by (job) (ts) > 0) > 3600`:                       {"ts"},
		`count(max by (id) (g{job="x"}) == 1) or vector(0)`:             {"g"},
		`topk(20, max by (id) (a) / max by (id) (b))`:                   {"a", "b"},
		`round(sum by (o) (increase(c{job="x"}[5m]))) > 0`:              {"c"},
		`a * on (id) group_left (owner) b offset 1h30m`:                 {"a", "b"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}
