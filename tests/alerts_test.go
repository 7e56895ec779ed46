package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

// The alert rules shipped in deploy/prometheus, their promtool unit tests, and the example
// Prometheus configuration that loads them.
const (
	alertsDir            = "../deploy/prometheus"
	alertsFile           = "keyturn-alerts.yml"
	alertsTestsFile      = "keyturn-alerts.test.yml"
	prometheusConfigFile = "prometheus.yml"
)

// TestAlertRulesPromtool checks the rules with `promtool check rules`, runs their unit
// tests with `promtool test rules`, and checks the example configuration (which loads
// the rules) with `promtool check config`. promtool comes with Debian's prometheus package.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := prometheusBinary(t, "promtool")
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", alertsTestsFile}, {"check", "config", prometheusConfigFile}} {
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

// prometheusBinary finds promtool or the prometheus server, both from Debian's
// prometheus package: a skip with the reason outside CI, a failure under CI (where
// .ci/run installs the package).
func prometheusBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if testdeps.InCI() {
		t.Fatalf("%s not found (.ci/run installs Debian's prometheus package): %v", name, err)
	}
	t.Skipf("skipping: %s not found (apt-get install prometheus; set CI=true to make this a failure): %v", name, err)
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
