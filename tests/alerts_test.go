package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/testdeps"
	"github.com/keyturn/keyturn/internal/testenv"
)

// The alert rules shipped in deploy/prometheus, and their promtool unit tests.
const (
	alertsDir       = "../deploy/prometheus"
	alertsFile      = "keyturn-alerts.yml"
	alertsTestsFile = "keyturn-alerts.test.yml"
)

// alertMetrics lists, by hand, every metric the alert rules read. The test checks it both
// ways: against the names scanned from the rules' expressions (so a rule cannot start
// reading a new metric unnoticed) and against a real worker's /metrics.
var alertMetrics = []string{
	"keyturn_rotation_step_duration_seconds_bucket",
	"keyturn_rotation_step_duration_seconds_count",
	"keyturn_rotations_total",
	"temporal_num_pollers",
	"temporal_worker_task_slots_available",
	"up", // Prometheus's own, per scrape target: not on /metrics
}

// TestAlertRulesPromtool checks the rules with `promtool check rules` and runs their unit
// tests with `promtool test rules`. promtool comes with Debian's prometheus package.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := promtoolPath(t)
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", alertsTestsFile}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = alertsDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// promtoolPath finds promtool: a skip with the reason outside CI, a failure under CI
// (where .ci/run installs it).
func promtoolPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if testdeps.InCI() {
		t.Fatalf("promtool not found (.ci/run installs Debian's prometheus package): %v", err)
	}
	t.Skipf("skipping: promtool not found (apt-get install prometheus; set CI=true to make this a failure): %v", err)
	return ""
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         *string           `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestAlertRulesShape: every rule is an alert with a for: duration, a severity an
// Alertmanager can route on, and annotations that say what happened and what to do; and
// the promtool tests cover every alert both firing and not firing.
func TestAlertRulesShape(t *testing.T) {
	var rules ruleFile
	readYAML(t, filepath.Join(alertsDir, alertsFile), &rules)
	var tests ruleTests
	readYAML(t, filepath.Join(alertsDir, alertsTestsFile), &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				quiet[a.AlertName] = true
			}
		}
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || !strings.HasPrefix(r.Alert, "Keyturn") {
				t.Errorf("group %s: a rule is not an alert named Keyturn...: %q", g.Name, r.Alert)
				continue
			}
			if r.For == nil {
				t.Errorf("%s: no for: duration", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description annotation", r.Alert)
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: the promtool tests need a firing case (%v) and a not-firing case (%v)", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	if alerts == 0 {
		t.Fatalf("no rules read from %s", alertsFile)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// TestAlertRulesMetricsExported: every metric the rules read is one a real worker exports.
// It runs `keyturn dev`, rotates the demo certificate once (Keyturn's own series appear on
// their first record), scrapes /metrics and looks each name up, a histogram's _bucket,
// _sum and _count under the histogram's name.
func TestAlertRulesMetricsExported(t *testing.T) {
	var rules ruleFile
	readYAML(t, filepath.Join(alertsDir, alertsFile), &rules)
	used := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, name := range metricNames(r.Expr) {
				used[name] = true
			}
		}
	}
	var scanned []string
	for name := range used {
		scanned = append(scanned, name)
	}
	slices.Sort(scanned)
	if !slices.Equal(scanned, alertMetrics) {
		t.Fatalf("the rules read %v; alertMetrics lists %v: update the list (and check the new names)", scanned, alertMetrics)
	}

	families := scrapeDevAfterRotation(t)
	for _, name := range alertMetrics {
		if name == "up" {
			continue
		}
		if !exported(families, name) {
			t.Errorf("the rules read %s, which the worker does not export", name)
		}
	}
	if t.Failed() {
		var names []string
		for name := range families {
			names = append(names, name)
		}
		slices.Sort(names)
		t.Logf("the worker exports: %v", names)
	}
}

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

func scrapeDevAfterRotation(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	state := filepath.Join(t.TempDir(), ".keyturn")
	port, codecPort, metricsPort := freePort(t), freePort(t), freePort(t)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(metricsPort)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var devOut testenv.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"dev", "--no-demo-postgres", "--no-ui", "--home", state,
			"--temporal-port", strconv.Itoa(port), "--codec-port", strconv.Itoa(codecPort), "--metrics-addr", metricsAddr, "--log-level", "warn"},
			strings.NewReader(""), &devOut, &devOut)
	}()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("keyturn dev did not stop within 30s")
		}
	}()
	waitFor(t, 90*time.Second, "keyturn dev to say it is running", func() bool {
		select {
		case code := <-done:
			t.Fatalf("keyturn dev exited %d early:\n%s", code, devOut.String())
		default:
		}
		return strings.Contains(devOut.String(), "Press Ctrl-C to stop.")
	})
	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--home", state, "--grace", "0s"}, strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), devOut.String())
	}
	return scrape(t, "http://"+metricsAddr+"/metrics")
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
// does not handle the {__name__="..."} form, which the rules do not use.
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

// TestMetricNames pins the scan on expressions shaped like the rules'.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="keyturn"} == 0 or absent(up{job="keyturn"})`:           {"up", "up"},
		`sum by (job, le) (rate(a_bucket{x=~"a|b"}[30m])) > 1e3`:        {"a_bucket"},
		`histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m:1m])))`: {"b_bucket"},
		"x unless x offset 15m and on (instance) y":                     {"x", "x", "y"},
		"min by (job) (\n  z{label=\"sum(\"}\n) == 0":                   {"z"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}
