package grafana

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"gopkg.in/yaml.v3"
)

// dashboardFile is the dashboard operators load.
const dashboardFile = "keyturn.json"

var update = flag.Bool("update", false, "write "+dashboardFile+" from Dashboard()")

// render is the file's exact content: indented JSON and a final newline.
func render(t *testing.T) []byte {
	t.Helper()
	d, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestDashboardFile: keyturn.json is what Dashboard() builds (run with -update after a
// change to the code).
func TestDashboardFile(t *testing.T) {
	want := render(t)
	if *update {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what Dashboard() builds: run `go test ./deploy/grafana -run TestDashboardFile -update` and commit it", dashboardFile)
	}
}

// variableUse finds $name and ${name...} in a query.
var variableUse = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// TestDashboardShape reads the file back the strict way (the SDK refuses unknown fields
// and wrong types, for every panel and query type it knows) and checks what an operator
// relies on: a fixed UID, every panel and query on the datasource variable with a
// Prometheus query, unique panel IDs and query IDs, and only defined variables used.
func TestDashboardShape(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	// The strict reading reports every problem, but in v0.0.22 the dashboard it fills in
	// lacks its panels: a nested reader returns its empty error list as a non-nil error,
	// and the panel is dropped. So: strict for the errors, plain for the content.
	var strict dashboard.Dashboard
	if err := strict.UnmarshalJSONStrict(raw); err != nil {
		if errs, ok := err.(cog.BuildErrors); !ok || len(errs) > 0 {
			t.Fatalf("%s is not a dashboard the Grafana Foundation SDK reads strictly: %v", dashboardFile, err)
		}
	}
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Uid == nil || *d.Uid != UID {
		t.Errorf("uid %v, want %q", d.Uid, UID)
	}

	defined := map[string]bool{"__rate_interval": true, "__range": true, "__interval": true, "__all": true}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	checkVars := func(where, expr string) {
		for _, m := range variableUse.FindAllStringSubmatch(expr, -1) {
			if !defined[m[1]] {
				t.Errorf("%s uses $%s, which is not a dashboard variable", where, m[1])
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.Query != nil && v.Query.String != nil {
			checkVars("variable "+v.Name, *v.Query.String)
		}
	}

	ids := map[uint32]string{}
	panels := 0
	for _, p := range d.Panels {
		if p.RowPanel != nil {
			row := "row " + deref(p.RowPanel.Title)
			if p.RowPanel.Id == 0 || ids[p.RowPanel.Id] != "" {
				t.Errorf("%s: ID %d missing or used twice", row, p.RowPanel.Id)
			}
			ids[p.RowPanel.Id] = row
			continue
		}
		panels++
		title := deref(p.Panel.Title)
		if p.Panel.Id == nil || ids[*p.Panel.Id] != "" {
			t.Errorf("panel %q: ID missing or used twice", title)
		} else {
			ids[*p.Panel.Id] = title
		}
		if title == "" || deref(p.Panel.Description) == "" {
			t.Errorf("panel %q needs a title and a description", title)
		}
		if !onDatasourceVariable(p.Panel.Datasource) {
			t.Errorf("panel %q: datasource %s, want the ${datasource} variable", title, describe(p.Panel.Datasource))
		}
		if len(p.Panel.Targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		var refs []string
		for _, target := range p.Panel.Targets {
			q, ok := target.(*prometheus.Dataquery)
			if !ok {
				t.Errorf("panel %q: a query of type %T, want a Prometheus query", title, target)
				continue
			}
			if q.Expr == "" || q.RefId == nil || slices.Contains(refs, *q.RefId) {
				t.Errorf("panel %q: a query without an expression, or its refId missing or used twice", title)
				continue
			}
			refs = append(refs, *q.RefId)
			if !onDatasourceVariable(q.Datasource) {
				t.Errorf("panel %q, query %s: datasource %s, want the ${datasource} variable", title, *q.RefId, describe(q.Datasource))
			}
			checkVars("panel "+title, q.Expr)
		}
	}
	if panels < 15 {
		t.Errorf("only %d panels read back from %s", panels, dashboardFile)
	}
}

func onDatasourceVariable(ref *dashboard.DataSourceRef) bool {
	return ref != nil && ref.Uid != nil && *ref.Uid == "${"+varDatasource+"}" && ref.Type != nil && *ref.Type == "prometheus"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func describe(ref *dashboard.DataSourceRef) string {
	if ref == nil {
		return "none"
	}
	return "type " + deref(ref.Type) + ", uid " + deref(ref.Uid)
}

// TestProvisioningExamples: the provisioning examples are Grafana's file format: a file
// provider for the dashboards with a path, and a Prometheus data source with a URL.
// (No Grafana runs in CI: this checks their shape, not that Grafana loads them.)
func TestProvisioningExamples(t *testing.T) {
	var dashboards struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "provisioning/dashboards/keyturn.yaml", &dashboards)
	if dashboards.APIVersion != 1 || len(dashboards.Providers) != 1 || dashboards.Providers[0].Type != "file" || dashboards.Providers[0].Options.Path == "" {
		t.Errorf("provisioning/dashboards/keyturn.yaml: want apiVersion 1 and one file provider with a path, got %+v", dashboards)
	}
	var datasources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "provisioning/datasources/prometheus.yaml", &datasources)
	if datasources.APIVersion != 1 || len(datasources.Datasources) != 1 || datasources.Datasources[0].Type != "prometheus" || datasources.Datasources[0].URL == "" {
		t.Errorf("provisioning/datasources/prometheus.yaml: want apiVersion 1 and one prometheus data source with a URL, got %+v", datasources)
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
