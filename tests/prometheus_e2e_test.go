package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// TestPrometheusScrapesAWorker: a real Prometheus (Debian's package), configured by the
// example deploy/prometheus/prometheus.yml, scrapes a real `keyturn worker` and evaluates
// the alert rules, both every second. A rotation that rolls back shows there as
// keyturn_rotations_total{outcome="rolled_back"} and fires KeyturnRotationRolledBack
// (and not KeyturnRotationFailed); an incident that fails fires KeyturnIncidentFailed.
func TestPrometheusScrapesAWorker(t *testing.T) {
	bin := prometheusBinary(t, "prometheus")
	env := brokenEnv(t)
	target := startMetricsWorker(t, env)
	prom := startPrometheus(t, bin, target)
	prom.await(t, `up{job="keyturn"} == 1`, "Prometheus to scrape the worker")

	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate e2e/app exited %d:\n%s", code, out)
	}
	if code, out := keyturn(t, env, "rotate", "e2e/broken", "--wait"); code == 0 || !strings.Contains(out, "rolled_back") {
		t.Fatalf("rotate e2e/broken should roll back; exited %d:\n%s", code, out)
	}
	prom.await(t, `keyturn_rotations_total{job="keyturn", kind="postgres", trigger="manual", outcome="rolled_back"} == 1`, "the rolled back rotation in Prometheus")
	alert := prom.await(t, `ALERTS{alertname="KeyturnRotationRolledBack", alertstate="firing"}`, "KeyturnRotationRolledBack to fire")
	want := map[string]string{"severity": "warning", "job": "keyturn", "instance": target, "kind": "postgres", "trigger": "manual", "outcome": "rolled_back"}
	for k, v := range want {
		if alert[0].Metric[k] != v {
			t.Errorf("KeyturnRotationRolledBack fired with %s=%q, want %q: %v", k, alert[0].Metric[k], v, alert[0].Metric)
		}
	}
	if len(alert) != 1 {
		t.Errorf("KeyturnRotationRolledBack fired %d times, want once: %v", len(alert), alert)
	}
	if got := prom.query(t, `ALERTS{alertname="KeyturnRotationFailed"}`); len(got) != 0 {
		t.Errorf("a rotation that rolled back made KeyturnRotationFailed active: %v", got)
	}

	// An incident in contain mode revokes every version of e2e/broken, then cannot test
	// the new one: the secret, and so the incident, fails.
	code, out := keyturn(t, env, "incident", "start", "--id", "prometheus-e2e", "--select", "id=e2e/broken", "--mode", "contain",
		"--reason", "prometheus end-to-end test", "--yes")
	if code == 0 || !strings.Contains(out, "1 failed") {
		t.Fatalf("the incident on e2e/broken should fail; exited %d:\n%s", code, out)
	}
	if got := prom.awaitOrEmpty(t, `ALERTS{alertname="KeyturnIncidentFailed", alertstate="firing"}`, "KeyturnIncidentFailed to fire"); len(got) != 1 {
		t.Errorf("KeyturnIncidentFailed fired %d times after a failed incident, want once: %v\nkeyturn_incidents_total in Prometheus: %v",
			len(got), got, prom.query(t, `keyturn_incidents_total`))
	}
}

// promServer is a Prometheus server the test started.
type promServer struct {
	url string
	out *testenv.SyncBuffer
}

// promWait bounds every wait on Prometheus: with scrapes and rule evaluations every
// second, each condition holds within a few seconds.
const promWait = 60 * time.Second

// startPrometheus runs bin on a free port with a fresh data directory and the example
// configuration deploy/prometheus/prometheus.yml, changed only where a test must: its
// target is the worker at target, its rule files are found from the test's directory,
// and it scrapes and evaluates every second. It returns once Prometheus is ready, and
// kills it when the test ends (the data directory goes with the test's temporary one).
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	var config map[string]any
	readYAML(t, filepath.Join(alertsDir, prometheusConfigFile), &config)
	config["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
	rules, _ := config["rule_files"].([]any)
	for i, r := range rules {
		abs, err := filepath.Abs(filepath.Join(alertsDir, fmt.Sprint(r)))
		if err != nil {
			t.Fatal(err)
		}
		rules[i] = abs
	}
	jobs, _ := config["scrape_configs"].([]any)
	if len(rules) != 1 || len(jobs) != 1 {
		t.Fatalf("%s: want one rule file and one scrape job, got %v and %v", prometheusConfigFile, rules, jobs)
	}
	job, _ := jobs[0].(map[string]any)
	if job["job_name"] != "keyturn" {
		t.Fatalf("%s: the scrape job is %v; the alert rules select job \"keyturn\"", prometheusConfigFile, job["job_name"])
	}
	job["static_configs"] = []any{map[string]any{"targets": []string{target}}}
	data, err := yaml.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := &promServer{url: "http://" + addr, out: &testenv.SyncBuffer{}}
	cmd := exec.Command(bin, "--config.file="+configPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("prometheus (pid %d) did not exit within 10s of SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	waitFor(t, 30*time.Second, "prometheus to be ready", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited early (%v):\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs an instant query through Prometheus's HTTP API.
func (p *promServer) query(t *testing.T, q string) []promSample {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: %s: %v", q, resp.Status, err)
	}
	if body.Status != "success" || body.Data.ResultType != "vector" {
		t.Fatalf("query %s: %s %s (result type %q)", q, body.Status, body.Error, body.Data.ResultType)
	}
	return body.Data.Result
}

// awaitOrEmpty runs q until it returns a series or promWait passes; it returns the last
// result, empty when the wait ran out.
func (p *promServer) awaitOrEmpty(t *testing.T, q, what string) []promSample {
	t.Helper()
	deadline := time.Now().Add(promWait)
	for {
		got := p.query(t, q)
		if len(got) > 0 || time.Now().After(deadline) {
			if len(got) == 0 {
				t.Logf("no result for %s within %s (waiting for %s)", q, promWait, what)
			}
			return got
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// await is awaitOrEmpty that fails the test when the wait runs out, showing the alerts
// Prometheus has and the Keyturn series it scraped.
func (p *promServer) await(t *testing.T, q, what string) []promSample {
	t.Helper()
	got := p.awaitOrEmpty(t, q, what)
	if len(got) == 0 {
		var seen []string
		for _, s := range p.query(t, `{__name__=~"ALERTS|up|keyturn_.*"}`) {
			seen = append(seen, fmt.Sprint(s.Metric, s.Value[1:]))
		}
		slices.Sort(seen)
		t.Fatalf("waited %s for %s (%s); Prometheus has:\n  %s", promWait, what, q, strings.Join(seen, "\n  "))
	}
	return got
}
