package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// planted is a value a user might paste into the wrong field; no message may echo it.
const planted = "hunter2-planted-Value"

func parseString(t *testing.T, body string) (*Config, error) {
	t.Helper()
	return Parse(filepath.Join(t.TempDir(), "agent.yaml"), []byte(body))
}

func TestParseAppliesDefaults(t *testing.T) {
	cfg, err := parseString(t, `
store: {type: file, dir: /var/lib/keyturn/store}
templates:
  - secret: prod/orders-db/app
    destination: /run/app/db.env
    format: env
  - secret: prod/orders-db/app
    destination: /run/app/db.conf
    template: "password={{ field \"password\" }}"
    mode: "0640"
reload:
  signal: hup
  pid_file: /run/app.pid
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Poll != DefaultPoll || cfg.ReadTimeout != DefaultReadTimeout {
		t.Errorf("poll %s, read timeout %s: want the defaults", cfg.Poll, cfg.ReadTimeout)
	}
	if cfg.Templates[0].Mode != 0o600 || cfg.Templates[0].UID != -1 || cfg.Templates[0].GID != -1 {
		t.Errorf("template 0: mode %o uid %d gid %d, want 0600 and owners unchanged", cfg.Templates[0].Mode, cfg.Templates[0].UID, cfg.Templates[0].GID)
	}
	if cfg.Templates[1].Format != FormatTemplate || cfg.Templates[1].Mode != 0o640 || cfg.Templates[1].parsed == nil {
		t.Errorf("template 1: format %q mode %o: want a parsed template with mode 0640", cfg.Templates[1].Format, cfg.Templates[1].Mode)
	}
	if cfg.Reload.Signal != syscall.SIGHUP || cfg.Reload.PidFile != "/run/app.pid" {
		t.Errorf("reload = %+v, want SIGHUP to the pid file", cfg.Reload)
	}
}

func TestParseReportsEveryProblemWithItsPlace(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VAULT_TOKEN", "")
	for name, tc := range map[string]struct {
		body string
		want []string // each must appear in the error
	}{
		"empty file":        {"", []string{"agent.yaml:1", "empty"}},
		"only comments":     {"# an agent\n", []string{"agent.yaml:1: "}},
		"not yaml":          {"store: [", []string{"not valid YAML"}},
		"no store":          {"templates: []", []string{"store: is required", "templates: no templates"}},
		"unknown store":     {"store: {type: " + planted + "}\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"agent.yaml:1: store.type: unknown store type", `"file", "vault", "awssm"`}},
		"file without dir":  {"store: {type: file}\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"store.dir: is required"}},
		"file dir with ~":   {"store: {type: file, dir: ~/.local/share/keyturn/store}\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"store.dir: must be an absolute path (no ~"}},
		"vault no token":    {"store: {type: vault, address: http://v}\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"store.token_file", "VAULT_TOKEN", "never put the token in this file"}},
		"token in the file": {"store: {type: vault, token: " + planted + "}\n", []string{`store.token: unknown field "token"`, "token_file"}},
		"bare poll":         {"store: {type: file, dir: /s}\npoll: 30\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"agent.yaml:2: poll: a bare number has no unit"}},
		"short poll":        {"store: {type: file, dir: /s}\npoll: 10ms\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{"agent.yaml:2: poll: must be at least 1s"}},
		"template problems": {`store: {type: file, dir: /s}
templates:
  - secret: Not Valid
    destination: relative/path
    format: ` + planted + `
  - destination: /x
    format: raw
    fields: [a, b]
    mode: "` + planted + `"
  - secret: a/b
    destination: /x
    format: env
    env_prefix: db-
`, []string{
			"agent.yaml:3: templates[0].secret: secret id", "agent.yaml:4: templates[0].destination: must be an absolute path",
			"agent.yaml:5: templates[0].format: unknown format", "agent.yaml:6: templates[1].secret: is required",
			"agent.yaml:8: templates[1].fields: format raw writes one field", "agent.yaml:9: templates[1].mode: must be octal",
			"agent.yaml:11: templates[2].destination: is also the destination of templates[1]",
			"agent.yaml:13: templates[2].env_prefix: must be upper-case",
		}},
		"world readable":        {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw, mode: \"0644\"}]", []string{"lets every user on the machine read the secret"}},
		"template syntax":       {"store: {type: file, dir: /s}\ntemplates:\n  - {secret: a/b, destination: /x, template: \"{{ if }}\"}\n", []string{"agent.yaml:3: templates[0].template: does not parse"}},
		"unknown function":      {"store: {type: file, dir: /s}\ntemplates:\n  - {secret: a/b, destination: /x, template: \"{{ password }}\"}\n", []string{"does not parse", `function "password" not defined`}},
		"missing template file": {"store: {type: file, dir: /s}\ntemplates:\n  - {secret: a/b, destination: /x, format: template, template_file: nope.tmpl}\n", []string{"template_file: cannot be read", "no such file"}},
		"unknown user":          {"store: {type: file, dir: /s}\ntemplates:\n  - {secret: a/b, destination: /x, format: raw, owner: no-such-user-here}\n", []string{"templates[0].owner: no user", "exists on this machine"}},
		"reload both":           {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw}]\nreload: {command: [true], signal: HUP, pid: 5}", []string{"agent.yaml:3: reload: set either command or signal"}},
		"reload nothing":        {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw}]\nreload: {timeout: 5s}", []string{"reload: needs a command"}},
		"signal no target":      {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw}]\nreload: {signal: HUP}", []string{"set exactly one of pid and pid_file"}},
		"bad signal":            {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw}]\nreload: {signal: " + planted + ", pid: 5}", []string{"reload.signal: is not a signal", "HUP"}},
		"command a string":      {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw}]\nreload: {command: systemctl reload nginx}", []string{"reload.command: must be a list"}},
		"unknown field":         {"store: {type: file, dir: /s}\ntemplates: [{secret: a/b, destination: /x, format: raw, destinaton: /y}]", []string{`agent.yaml:2: templates[0].destinaton: unknown field "destinaton" (did you mean "destination"?)`}},
		"misspelt top field":    {"store: {type: file, dir: /s}\npol: 30s\ntemplates: [{secret: a/b, destination: /x, format: raw}]", []string{`agent.yaml:2: pol: unknown field "pol" (did you mean "poll"?)`}},
		"repeated key":          {"store: {type: file, dir: /s}\npoll: 30s\ntemplates: [{secret: a/b, destination: /x, format: raw}]\npoll: 1m", []string{"agent.yaml:4: poll: set twice (first at line 2); keep only one"}},
		"repeated template key": {"store: {type: file, dir: /s}\ntemplates:\n  - secret: a/b\n    destination: /x\n    format: raw\n    destination: /y\n", []string{"agent.yaml:6: templates[0].destination: set twice (first at line 4)"}},
		"merge key":             {"base: &b {type: file, dir: /s}\nstore: {<<: *b}\n", []string{"agent.yaml:1: base: unknown field", "agent.yaml:2: store: YAML merge keys (<<) are not supported"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "agent.yaml"), []byte(tc.body))
			if err == nil {
				t.Fatal("Parse accepted the file")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("error echoes a value from the file:\n%v", err)
			}
			var problems Errors
			if name != "not yaml" && !errors.As(err, &problems) {
				t.Errorf("error is not an Errors: %T", err)
			}
		})
	}
}

func TestLoadReadsTemplateFileBesideTheConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db.tmpl"), []byte(`user={{ meta "username" }}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.yaml")
	body := "store: {type: file, dir: /s}\npoll: 2m\ntemplates:\n  - {secret: a/b, destination: /x, format: template, template_file: db.tmpl, owner: \"0\", group: \"0\"}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Poll != 2*time.Minute || cfg.Templates[0].Text != `user={{ meta "username" }}` || cfg.Templates[0].UID != 0 || cfg.Templates[0].GID != 0 {
		t.Fatalf("config = poll %s, template %q, uid %d gid %d", cfg.Poll, cfg.Templates[0].Text, cfg.Templates[0].UID, cfg.Templates[0].GID)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "pass the file with -c") {
		t.Fatalf("Load of a missing file = %v", err)
	}
}

// TestParseFollowsAliases: an anchor shared between templates reads as its value, as it
// does in the inventory, instead of failing as "an alias".
func TestParseFollowsAliases(t *testing.T) {
	cfg, err := parseString(t, `
store: {type: file, dir: /var/lib/keyturn/store}
templates:
  - secret: &db prod/orders-db/app
    destination: /run/app/db.env
    format: env
    fields: &keys [username, password]
  - secret: *db
    destination: /run/app/db.json
    format: json
    fields: *keys
`)
	if err != nil {
		t.Fatal(err)
	}
	for i, tp := range cfg.Templates {
		if tp.Secret != "prod/orders-db/app" || strings.Join(tp.Fields, ",") != "username,password" {
			t.Errorf("template %d: secret %q fields %q, want the anchored values", i, tp.Secret, tp.Fields)
		}
	}
}
