package check

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

const composeDir = "../compose"

// The services of the stack, by role. A rename must be carried into this test, which
// then checks that the other services still name it right.
var (
	keyturnServices = []string{"keyturn-init", "keyturn-setup", "keyturn-worker", "keyturn-apply", "codec-server"}
	otherServices   = []string{"temporal-db", "temporal-schema", "temporal", "temporal-ready", "app-db", "dex", "temporal-ui", "prometheus", "grafana"}
)

// loadCompose loads compose.yaml as `docker compose` does, with the variables of envFile
// (and nothing from the environment or a developer's own .env), validating it against
// the Compose specification's schema.
func loadCompose(t *testing.T, envFile string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(composeDir, "compose.yaml")},
		cli.WithWorkingDirectory(composeDir), cli.WithEnvFiles(envFile), cli.WithDotEnv)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func stack(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, filepath.Join(composeDir, ".env.example"))
	if err != nil {
		t.Fatalf("compose.yaml with .env.example: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// TestComposeStackLoads: the file is valid Compose, holds exactly the stack's services,
// and every image is pinned to a version (Temporal's to the server and UI this module
// is built and tested with).
func TestComposeStackLoads(t *testing.T) {
	p := stack(t)
	want := append(slices.Clone(keyturnServices), otherServices...)
	slices.Sort(want)
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	server, ui := goModVersion(t, "go.temporal.io/server"), goModVersion(t, "github.com/temporalio/ui-server/v2")
	// An exact release: major.minor.patch, or major.minor for PostgreSQL (since 10 its
	// second number is the patch release).
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+\.[0-9]+\.[0-9]+$|^postgres:[0-9]+\.[0-9]+$`)
	for name, s := range p.Services {
		if slices.Contains(keyturnServices, name) {
			if s.Image != "keyturn:local" || s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s: runs image %q built from %v, want keyturn:local from deploy/Dockerfile", name, s.Image, s.Build)
			}
			continue
		}
		if !pinned.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to an exact version", name, s.Image)
		}
		repo, tag, _ := strings.Cut(s.Image, ":")
		switch repo {
		case "temporalio/server", "temporalio/admin-tools":
			if "v"+tag != server {
				t.Errorf("%s: %s, but go.mod builds and tests with go.temporal.io/server %s", name, s.Image, server)
			}
		case "temporalio/ui":
			if "v"+tag != ui {
				t.Errorf("%s: %s, but go.mod's ui-server (whose settings the README documents) is %s", name, s.Image, ui)
			}
		}
	}
}

// TestComposeRefusesMissingSecrets: without a .env, `docker compose` stops before it
// starts anything and says which value is missing and where to set it.
func TestComposeRefusesMissingSecrets(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadCompose(t, empty)
	if err == nil || !strings.Contains(err.Error(), "_PASSWORD") || !strings.Contains(err.Error(), "cp .env.example .env") {
		t.Fatalf("compose.yaml without its variables: %v, want the missing variable and the fix", err)
	}
	example, err := os.ReadFile(filepath.Join(composeDir, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(raw), -1) {
		if !strings.Contains(string(example), "\n"+m[1]+"=") && !strings.HasPrefix(string(example), m[1]+"=") {
			t.Errorf("compose.yaml requires %s, which .env.example does not list", m[1])
		}
	}
}

// TestComposeHardening: Keyturn's containers run as the image's non-root user on a
// read-only root filesystem without capabilities; every published port is on the
// loopback address; every file mounted from the repository exists; and the state
// volume sits where the image keeps its state.
func TestComposeHardening(t *testing.T) {
	p := stack(t)
	home := dockerfileEnv(t, "KEYTURN_HOME")
	for _, name := range keyturnServices {
		s := service(t, p, name)
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") || s.User != "" {
			t.Errorf("%s: read_only %v, cap_drop %v, security_opt %v, user %q; want read-only, ALL dropped, no-new-privileges, the image's non-root user",
				name, s.ReadOnly, s.CapDrop, s.SecurityOpt, s.User)
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source == "keyturn-state" && v.Target != home {
				t.Errorf("%s: the state volume is at %s, but the image's KEYTURN_HOME is %s", name, v.Target, home)
			}
		}
	}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q; publish on 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mounts %s, which is not in the repository: %v", name, v.Source, err)
			} else if !v.ReadOnly {
				t.Errorf("%s: mounts %s writable; repository files are mounted read-only", name, v.Source)
			}
		}
	}
}

// TestComposeWiring: each service names the others as they are really called and
// published, so the stack works as a whole: Prometheus scrapes the worker's metrics
// port, Grafana's data source is that Prometheus, the Web UI logs in with Dex and sends
// the codec server the tokens it accepts, and every Keyturn command uses one namespace.
func TestComposeWiring(t *testing.T) {
	p := stack(t)
	worker, codecSrv, ui := service(t, p, "keyturn-worker"), service(t, p, "codec-server"), service(t, p, "temporal-ui")

	// Prometheus → the worker's /metrics.
	var prom struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "../prometheus/prometheus.yml", &prom)
	metrics := flagValue(t, worker.Command, "--metrics-addr")
	_, port, _ := strings.Cut(metrics, ":")
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].JobName != "keyturn" ||
		!slices.Contains(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, "keyturn-worker:"+port) {
		t.Errorf("prometheus.yml must scrape keyturn-worker:%s (the worker's --metrics-addr %s) as job keyturn: %+v", port, metrics, prom.ScrapeConfigs)
	}
	promSvc := service(t, p, "prometheus")
	for _, rule := range prom.RuleFiles {
		if !mountsFile(promSvc, "/etc/prometheus/"+rule) {
			t.Errorf("prometheus.yml loads %s, which the prometheus service does not mount beside it", rule)
		}
	}

	// Grafana → Prometheus, and the dashboard where its provider looks.
	var ds struct {
		Datasources []struct{ URL string } `json:"datasources"`
	}
	readYAML(t, "../grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana's data source is %+v, want http://prometheus:9090", ds.Datasources)
	}
	var dash struct {
		Providers []struct {
			Options struct{ Path string } `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, "../grafana/provisioning/dashboards/keyturn.yaml", &dash)
	if len(dash.Providers) != 1 || !mountsFile(service(t, p, "grafana"), dash.Providers[0].Options.Path+"/keyturn.json") {
		t.Errorf("grafana must mount keyturn.json in its provider's path %+v", dash.Providers)
	}

	// The Web UI → Dex → the codec server.
	var dex struct {
		Issuer        string `json:"issuer"`
		StaticClients []struct {
			ID           string   `json:"id"`
			SecretEnv    string   `json:"secretEnv"`
			RedirectURIs []string `json:"redirectURIs"`
		} `json:"staticClients"`
	}
	readYAML(t, filepath.Join(composeDir, "dex.yaml"), &dex)
	env := func(s types.ServiceConfig, k string) string {
		t.Helper()
		v, ok := s.Environment[k]
		if !ok || v == nil {
			t.Fatalf("%s: %s is not set", s.Name, k)
		}
		return *v
	}
	if len(dex.StaticClients) != 1 {
		t.Fatalf("dex.yaml: %d static clients, want the Web UI's", len(dex.StaticClients))
	}
	client := dex.StaticClients[0]
	dexSvc := service(t, p, "dex")
	checks := []struct{ what, got, want string }{
		{"the UI's identity provider", env(ui, "TEMPORAL_AUTH_PROVIDER_URL"), dex.Issuer},
		{"the codec server's issuer", flagValue(t, codecSrv.Command, "--jwt-issuer"), dex.Issuer},
		{"the UI's client ID", env(ui, "TEMPORAL_AUTH_CLIENT_ID"), client.ID},
		{"the codec server's audience", flagValue(t, codecSrv.Command, "--jwt-audience"), client.ID},
		{"the UI's client secret", env(ui, "TEMPORAL_AUTH_CLIENT_SECRET"), env(dexSvc, client.SecretEnv)},
		{"the codec server's keys", flagValue(t, codecSrv.Command, "--jwks-url"), "http://dex:5556" + mustURL(t, dex.Issuer).Path + "/keys"},
		{"the UI passes the access token", env(ui, "TEMPORAL_CODEC_PASS_ACCESS_TOKEN"), "true"},
		{"the UI's network", ui.NetworkMode, "service:dex"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s is %q, want %q", c.what, c.got, c.want)
		}
	}
	if !slices.Contains(client.RedirectURIs, env(ui, "TEMPORAL_AUTH_CALLBACK_URL")) {
		t.Errorf("dex allows the redirects %v, not the UI's callback %s", client.RedirectURIs, env(ui, "TEMPORAL_AUTH_CALLBACK_URL"))
	}
	// The browser reaches Dex's issuer, the UI and the codec server on published ports.
	issuer := mustURL(t, dex.Issuer)
	callback := mustURL(t, env(ui, "TEMPORAL_AUTH_CALLBACK_URL"))
	codecURL := mustURL(t, env(ui, "TEMPORAL_CODEC_ENDPOINT"))
	for _, pub := range []struct {
		svc types.ServiceConfig
		u   *url.URL
	}{{dexSvc, issuer}, {dexSvc, callback}, {codecSrv, codecURL}} {
		if pub.u.Hostname() != "localhost" || !publishes(pub.svc, pub.u.Port()) {
			t.Errorf("%s: the browser goes to %s, which %s does not publish", pub.svc.Name, pub.u, pub.svc.Name)
		}
	}
	if flagValue(t, codecSrv.Command, "--allow-host") != codecURL.Hostname() {
		t.Errorf("the codec server allows host %s, the UI calls %s", flagValue(t, codecSrv.Command, "--allow-host"), codecURL.Host)
	}
	if origin := callback.Scheme + "://" + callback.Host; flagValue(t, codecSrv.Command, "--allow-origin") != origin {
		t.Errorf("the codec server allows origin %s, the UI's pages are on %s", flagValue(t, codecSrv.Command, "--allow-origin"), origin)
	}
	if _, listenPort, _ := strings.Cut(flagValue(t, codecSrv.Command, "--listen"), ":"); !publishesTarget(codecSrv, codecURL.Port(), listenPort) {
		t.Errorf("the codec server listens on %s, not on the port published as %s", listenPort, codecURL.Port())
	}

	// One cluster and one namespace for every Keyturn command, the UI's default.
	for _, name := range []string{"keyturn-setup", "keyturn-worker", "keyturn-apply"} {
		s := service(t, p, name)
		if env(s, "TEMPORAL_ADDRESS") != "temporal:7233" || env(s, "TEMPORAL_NAMESPACE") != env(ui, "TEMPORAL_DEFAULT_NAMESPACE") {
			t.Errorf("%s: Temporal at %s, namespace %s; the UI shows %s", name, env(s, "TEMPORAL_ADDRESS"), env(s, "TEMPORAL_NAMESPACE"), env(ui, "TEMPORAL_DEFAULT_NAMESPACE"))
		}
	}
	if env(ui, "TEMPORAL_ADDRESS") != "temporal:7233" {
		t.Errorf("the UI reaches Temporal at %s", env(ui, "TEMPORAL_ADDRESS"))
	}
	// The worker and the codec server share one codec key, the one keyturn-init makes.
	key := keyturnInitKey(t, service(t, p, "keyturn-init"))
	if env(worker, "KEYTURN_CODEC_KEY_FILE") != key || flagValue(t, codecSrv.Command, "--codec-key-file") != key {
		t.Errorf("keyturn-init makes %s; the worker uses %s and the codec server %s", key, env(worker, "KEYTURN_CODEC_KEY_FILE"), flagValue(t, codecSrv.Command, "--codec-key-file"))
	}
	// The inventory's secret references the variable the worker is given.
	inv, err := os.ReadFile(filepath.Join(composeDir, "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`env:([A-Z_]+)`).FindAllStringSubmatch(string(inv), -1) {
		env(worker, m[1])
	}

	// A PostgreSQL is healthy once it answers over TCP: during its init scripts the image's
	// temporary server answers on the socket only.
	for _, name := range []string{"temporal-db", "app-db"} {
		s := service(t, p, name)
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "--host=127.0.0.1") {
			t.Errorf("%s: its healthcheck must check TCP (pg_isready --host=127.0.0.1): %+v", name, s.HealthCheck)
		}
	}

	// The order in which they start.
	order := map[string]map[string]string{
		"temporal-schema": {"temporal-db": types.ServiceConditionHealthy},
		"temporal":        {"temporal-schema": types.ServiceConditionCompletedSuccessfully},
		"temporal-ready":  {"temporal": types.ServiceConditionStarted},
		"keyturn-setup":   {"temporal-ready": types.ServiceConditionCompletedSuccessfully},
		"keyturn-worker": {"keyturn-init": types.ServiceConditionCompletedSuccessfully,
			"keyturn-setup": types.ServiceConditionCompletedSuccessfully, "app-db": types.ServiceConditionHealthy},
		"keyturn-apply": {"keyturn-setup": types.ServiceConditionCompletedSuccessfully},
		"codec-server":  {"keyturn-init": types.ServiceConditionCompletedSuccessfully},
	}
	for name, deps := range order {
		s := service(t, p, name)
		for dep, cond := range deps {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("%s must wait for %s (%s), has %+v", name, dep, cond, s.DependsOn)
			}
		}
	}
}

// goModVersion is the version of module in Keyturn's go.mod.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return m[1]
}

// dockerfileEnv is the value the image's Dockerfile gives an environment variable.
func dockerfileEnv(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\b` + name + `=(\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("deploy/Dockerfile does not set %s", name)
	}
	return m[1]
}

// flagValue is the value of a --name=value or --name value argument.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("%s is not among %v", name, args)
	return ""
}

// keyturnInitKey is the key file keyturn-init creates (its last argument).
func keyturnInitKey(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	if len(s.Command) < 3 || s.Command[0] != "codec-key" || s.Command[1] != "new" {
		t.Fatalf("keyturn-init runs %v, want codec-key new", s.Command)
	}
	return s.Command[len(s.Command)-1]
}

func publishes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if p.Published == port {
			return true
		}
	}
	return false
}

func publishesTarget(s types.ServiceConfig, published, target string) bool {
	for _, p := range s.Ports {
		if p.Published == published && strconv.FormatUint(uint64(p.Target), 10) == target {
			return true
		}
	}
	return false
}

func mountsFile(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target {
			return true
		}
	}
	return false
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		t.Fatalf("%q is not a URL: %v", s, err)
	}
	return u
}
