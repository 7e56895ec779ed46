package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/secret"
)

// Store types the agent reads from: the stores Keyturn writes to.
const (
	StoreFile  = "file"
	StoreVault = "vault"
	StoreAWSSM = "awssm"
)

// Formats a template renders in; see docs/agent.md for each one's layout.
const (
	// FormatRaw writes one field's value as it is.
	FormatRaw = "raw"
	// FormatEnv writes NAME='value' lines: the fields, then the metadata.
	FormatEnv = "env"
	// FormatJSON writes one JSON object with the version, metadata and fields.
	FormatJSON = "json"
	// FormatPEM concatenates PEM fields of a certificate (certificate, chain, key).
	FormatPEM = "pem"
	// FormatTemplate runs a Go text/template.
	FormatTemplate = "template"
)

// Defaults applied to fields left out of the file.
const (
	DefaultPoll          = 30 * time.Second
	DefaultReadTimeout   = 30 * time.Second
	DefaultReloadTimeout = 30 * time.Second
	DefaultMode          = os.FileMode(0o600)
)

var (
	formats        = []string{FormatRaw, FormatEnv, FormatJSON, FormatPEM, FormatTemplate}
	storeTypes     = []string{StoreFile, StoreVault, StoreAWSSM}
	topFields      = []string{"store", "poll", "read_timeout", "templates", "reload"}
	storeFields    = []string{"type", "dir", "address", "token_file", "mount", "staging_prefix", "name_prefix", "region"}
	templateFields = []string{"secret", "destination", "format", "fields", "env_prefix", "template", "template_file", "mode", "owner", "group"}
	reloadFields   = []string{"command", "timeout", "signal", "pid", "pid_file"}
)

// maxConfigSize bounds what Load reads; an agent file is a few hundred bytes.
const maxConfigSize = 1 << 20

// Config is the agent's configuration file.
type Config struct {
	// Path is the file it was loaded from, for messages.
	Path string
	// Store is where the secrets are read.
	Store StoreConfig
	// Poll is how often each secret is read; DefaultPoll when zero.
	Poll time.Duration
	// ReadTimeout bounds one read of the store; DefaultReadTimeout when zero.
	ReadTimeout time.Duration
	// Templates are the files to render, in file order.
	Templates []Template
	// Reload runs once after each batch of changed files; nil: none.
	Reload *Reload
}

// StoreConfig says how to reach the store. Credentials never sit in this file: Vault's
// token comes from TokenFile or VAULT_TOKEN, AWS's from its standard chain.
type StoreConfig struct {
	Type string
	// Dir is the file store's directory (store.key and secrets/).
	Dir string
	// Address is Vault's URL; VAULT_ADDR when empty.
	Address string
	// TokenFile holds the Vault token; VAULT_TOKEN when empty.
	TokenFile string
	// Mount is the KV v2 mount; "secret" when empty.
	Mount string
	// StagingPrefix is the worker's Vault staging prefix, when not the default.
	StagingPrefix string
	// NamePrefix is the worker's AWS Secrets Manager name prefix (KEYTURN_AWSSM_PREFIX).
	NamePrefix string
	// Region is the AWS region; the standard chain's when empty.
	Region string
	// Line is where the store block starts.
	Line int
}

// Template is one file the agent renders from one secret.
type Template struct {
	// Secret is the secret's path in the store: its ID, or the inventory's store.path
	// when the secret sets one.
	Secret secret.ID
	// Destination is the file written; its directory must exist.
	Destination string
	// Format is one of the Format constants.
	Format string
	// Fields picks and orders fields: raw takes one, env, json and pem a subset in order.
	Fields []string
	// EnvPrefix is put before each name in the env format, e.g. DB_.
	EnvPrefix string
	// Text is the Go template (format template), inline or read from template_file.
	Text string
	// Mode is the file's permission bits; DefaultMode (0600) when not set.
	Mode os.FileMode
	// UID and GID, when not -1, own the file (needs the privilege to chown).
	UID, GID int
	// Line is where the template starts in the file.
	Line int

	// parsed is Text parsed, for FormatTemplate.
	parsed *template.Template
}

// Reload is what runs after a batch of changes: a command or a signal.
type Reload struct {
	// Command is argv, run without a shell.
	Command []string
	// Timeout bounds the command; DefaultReloadTimeout when zero.
	Timeout time.Duration
	// Signal is sent to Pid, or to the pid in PidFile read at reload time.
	Signal  syscall.Signal
	Pid     int
	PidFile string
	// Line is where the reload block starts.
	Line int
}

// Load reads and validates the agent's configuration file. A problem with the file
// itself is an Errors listing every problem with its line and field.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w; pass the file with -c", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("agent config %s is over %d bytes; it should be a short YAML file", path, maxConfigSize)
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration; name is the file name used in problems.
// Files a template names (template_file) are read relative to name's directory.
func Parse(name string, data []byte) (*Config, error) {
	p := &problems{Decoder: yamlfields.Decoder{Report: yamlfields.Report{File: name}}}
	cfg := decodeConfig(p, name, data)
	if cfg != nil {
		cfg.validate(p)
	}
	if len(p.Problems) > 0 {
		return nil, Errors(p.Problems)
	}
	return cfg, nil
}

func decodeConfig(p *problems, name string, data []byte) *Config {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(1, "", "the file is empty; it needs store and templates")
			return nil
		}
		// yaml.v3's syntax errors name a line and the construct, not the value.
		p.add(0, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "a second YAML document starts here; the agent's file is one document")
	}
	if len(doc.Content) == 0 {
		p.add(1, "", "the file holds no settings; it needs store and templates")
		return nil
	}
	root := doc.Content[0]
	top, ok := p.mapping(root, "", topFields)
	if !ok {
		return nil
	}
	cfg := &Config{Path: name}
	if f, ok := top.Fields["store"]; ok {
		cfg.Store.Line = f.Key.Line
		if st, ok := p.mapping(f.Val, "store", storeFields); ok {
			st.Str("type", &cfg.Store.Type)
			st.Str("dir", &cfg.Store.Dir)
			st.Str("address", &cfg.Store.Address)
			st.Str("token_file", &cfg.Store.TokenFile)
			st.Str("mount", &cfg.Store.Mount)
			st.Str("staging_prefix", &cfg.Store.StagingPrefix)
			st.Str("name_prefix", &cfg.Store.NamePrefix)
			st.Str("region", &cfg.Store.Region)
		}
	} else {
		p.add(root.Line, "store", "is required: say where secrets are read, e.g. store: {type: file, dir: /var/lib/keyturn/store}")
	}
	top.Duration("poll", &cfg.Poll)
	top.Duration("read_timeout", &cfg.ReadTimeout)
	if f, ok := top.Fields["templates"]; ok && f.Val.Kind == yaml.SequenceNode {
		for i, n := range f.Val.Content {
			path := fmt.Sprintf("templates[%d]", i)
			t := Template{Line: n.Line, UID: -1, GID: -1}
			if m, ok := p.mapping(n, path, templateFields); ok {
				decodeTemplate(m, name, &t)
			}
			cfg.Templates = append(cfg.Templates, t)
		}
	} else if ok {
		p.add(f.Val.Line, "templates", "must be a list of templates, each starting with '- secret: ...', got %s", yamlfields.Describe(f.Val))
	}
	if f, ok := top.Fields["reload"]; ok {
		r := &Reload{Line: f.Key.Line}
		if m, ok := p.mapping(f.Val, "reload", reloadFields); ok {
			m.StrList("command", &r.Command)
			m.Duration("timeout", &r.Timeout)
			var sig string
			m.Str("signal", &sig)
			if sig != "" {
				s, ok := parseSignal(sig)
				if !ok {
					p.add(m.LineOf("signal"), "reload.signal", "is not a signal this agent sends; use one of %s", strings.Join(signalNames(), ", "))
				}
				r.Signal = s
			}
			m.Integer("pid", &r.Pid)
			m.Str("pid_file", &r.PidFile)
			// A pid of 0 would signal the agent's own process group: refuse it below.
			if m.Has("pid") && r.Pid <= 0 {
				p.add(m.LineOf("pid"), "reload.pid", "must be a process ID above 0; or name a pid_file")
			}
		}
		cfg.Reload = r
	}
	return cfg
}

func decodeTemplate(m yamlfields.Block, configPath string, t *Template) {
	var id, mode, owner, group, file string
	m.Str("secret", &id)
	t.Secret = secret.ID(id)
	m.Str("destination", &t.Destination)
	m.Str("format", &t.Format)
	m.StrList("fields", &t.Fields)
	m.Str("env_prefix", &t.EnvPrefix)
	m.Str("template", &t.Text)
	m.Str("template_file", &file)
	if file != "" {
		if m.Has("template") {
			m.D.Add(m.LineOf("template_file"), yamlfields.Join(m.Path, "template_file"), "set either template or template_file, not both")
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(configPath), file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			m.D.Add(m.LineOf("template_file"), yamlfields.Join(m.Path, "template_file"), "cannot be read (%v); give a readable file, relative to the config file's directory", errors.Unwrap(err))
		}
		t.Text = string(data)
	}
	if n, ok := m.Scalar("mode", "a string"); ok {
		mode = n.Value
		// YAML reads 0640 unquoted as the number 416 (octal): take its digits as written.
		v, err := strconv.ParseUint(strings.TrimPrefix(mode, "0o"), 8, 32)
		if err != nil || v > 0o777 {
			m.D.Add(n.Line, yamlfields.Join(m.Path, "mode"), "must be octal permission bits such as \"0600\" or \"0640\" (quote it)")
		} else {
			t.Mode = os.FileMode(v)
		}
	}
	m.Str("owner", &owner)
	m.Str("group", &group)
	if owner != "" {
		uid, err := lookupUser(owner)
		if err != nil {
			m.D.Add(m.LineOf("owner"), yamlfields.Join(m.Path, "owner"), "%v; give a user name or numeric uid that exists on this machine", err)
		}
		t.UID = uid
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			m.D.Add(m.LineOf("group"), yamlfields.Join(m.Path, "group"), "%v; give a group name or numeric gid that exists on this machine", err)
		}
		t.GID = gid
	}
}

// ApplyDefaults fills in what the file left out.
func (c *Config) ApplyDefaults() {
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.Store.Type == StoreVault && c.Store.Address == "" {
		c.Store.Address = os.Getenv("VAULT_ADDR")
	}
	for i := range c.Templates {
		t := &c.Templates[i]
		if t.Mode == 0 {
			t.Mode = DefaultMode
		}
		if t.Format == "" && t.Text != "" {
			t.Format = FormatTemplate
		}
	}
	if c.Reload != nil && len(c.Reload.Command) > 0 && c.Reload.Timeout == 0 {
		c.Reload.Timeout = DefaultReloadTimeout
	}
}

// validate applies the defaults and records every problem with the values.
func (c *Config) validate(p *problems) {
	c.ApplyDefaults()
	switch c.Store.Type {
	case StoreFile:
		switch {
		case c.Store.Dir == "":
			p.add(c.Store.Line, "store.dir", "is required for the file store: the directory holding store.key and secrets/")
		case !filepath.IsAbs(c.Store.Dir):
			// No shell reads this file: "~" and relative paths would silently mean
			// something else depending on where and as whom the agent starts.
			p.add(c.Store.Line, "store.dir", "must be an absolute path (no ~; `keyturn dev` prints its store's path as Store:)")
		}
	case StoreVault:
		if c.Store.Address == "" {
			p.add(c.Store.Line, "store.address", "is required for Vault: set it or VAULT_ADDR")
		}
		if c.Store.TokenFile == "" && os.Getenv("VAULT_TOKEN") == "" {
			p.add(c.Store.Line, "store.token_file", "Vault needs a token: name a file holding it with token_file, or set VAULT_TOKEN (never put the token in this file)")
		}
	case StoreAWSSM:
	case "":
		if c.Store.Line > 0 {
			p.add(c.Store.Line, "store.type", "is required: one of %s", yamlfields.QuoteList(storeTypes))
		}
	default:
		p.add(c.Store.Line, "store.type", "unknown store type; use one of %s", yamlfields.QuoteList(storeTypes))
	}
	if c.Poll < time.Second {
		p.add(0, "poll", "must be at least 1s; 30s to a few minutes suits most services (keep it well under the rotation's grace period)")
	}
	if c.ReadTimeout < 0 {
		p.add(0, "read_timeout", "must not be negative")
	}
	if len(c.Templates) == 0 {
		p.add(0, "templates", "no templates: list at least one, e.g. - {secret: prod/app/db, destination: /run/app/db.env, format: env}")
	}
	seen := map[string]int{}
	for i := range c.Templates {
		c.Templates[i].validate(p, fmt.Sprintf("templates[%d]", i))
		dest := filepath.Clean(c.Templates[i].Destination)
		if first, dup := seen[dest]; dup && c.Templates[i].Destination != "" {
			p.add(c.Templates[i].Line, fmt.Sprintf("templates[%d].destination", i), "is also the destination of templates[%d]; give each template a file of its own", first)
		}
		seen[dest] = i
	}
	if r := c.Reload; r != nil {
		hasCmd, hasSig := len(r.Command) > 0, r.Signal != 0
		switch {
		case hasCmd && hasSig:
			p.add(r.Line, "reload", "set either command or signal, not both")
		case !hasCmd && !hasSig:
			p.add(r.Line, "reload", "needs a command (argv list, e.g. command: [systemctl, reload, nginx]) or a signal with pid or pid_file")
		case hasSig && (r.Pid == 0) == (r.PidFile == ""):
			p.add(r.Line, "reload", "a signal goes to one process: set exactly one of pid and pid_file")
		case hasCmd && (r.Pid != 0 || r.PidFile != ""):
			p.add(r.Line, "reload", "pid and pid_file go with signal; remove them or use signal instead of command")
		}
		if hasCmd && r.Command[0] == "" {
			p.add(r.Line, "reload.command", "the first item is the program to run and cannot be empty")
		}
		if r.Timeout < 0 {
			p.add(r.Line, "reload.timeout", "must not be negative")
		}
	}
}

func (t *Template) validate(p *problems, path string) {
	if t.Secret == "" {
		p.add(t.Line, yamlfields.Join(path, "secret"), "is required: the secret's path in the store (its ID, unless the inventory sets store.path)")
	} else if err := t.Secret.Validate(); err != nil {
		p.add(t.Line, yamlfields.Join(path, "secret"), "%v", err)
	}
	switch {
	case t.Destination == "":
		p.add(t.Line, yamlfields.Join(path, "destination"), "is required: the file to write, e.g. /run/app/db.env")
	case !filepath.IsAbs(t.Destination):
		p.add(t.Line, yamlfields.Join(path, "destination"), "must be an absolute path, so the file does not depend on where the agent starts")
	case strings.HasSuffix(t.Destination, "/"):
		p.add(t.Line, yamlfields.Join(path, "destination"), "names a directory; name the file to write")
	}
	if t.Format == "" {
		p.add(t.Line, yamlfields.Join(path, "format"), "is required: one of %s", yamlfields.QuoteList(formats))
		return
	}
	if !yamlfields.Contains(formats, t.Format) {
		p.add(t.Line, yamlfields.Join(path, "format"), "unknown format; use one of %s", yamlfields.QuoteList(formats))
		return
	}
	if t.Format == FormatTemplate {
		if t.Text == "" {
			p.add(t.Line, yamlfields.Join(path, "template"), "format template needs the template inline (template: |) or in a file (template_file)")
			return
		}
		parsed, err := parseTemplate(t.Destination, t.Text)
		if err != nil {
			// A parse error quotes the template's own text, which is configuration,
			// not material.
			p.add(t.Line, yamlfields.Join(path, "template"), "does not parse: %v", err)
			return
		}
		t.parsed = parsed
	} else if t.Text != "" {
		p.add(t.Line, yamlfields.Join(path, "template"), "is only used with format template; remove it or set format: template")
	}
	if t.Format == FormatRaw && len(t.Fields) > 1 {
		p.add(t.Line, yamlfields.Join(path, "fields"), "format raw writes one field; list one, or use env, json or a template")
	}
	if t.EnvPrefix != "" && t.Format != FormatEnv {
		p.add(t.Line, yamlfields.Join(path, "env_prefix"), "is only used with format env")
	}
	if t.EnvPrefix != "" && envName("", t.EnvPrefix) != t.EnvPrefix {
		p.add(t.Line, yamlfields.Join(path, "env_prefix"), "must be upper-case letters, digits and _, e.g. DB_")
	}
	if t.Mode&0o007 != 0 {
		p.add(t.Line, yamlfields.Join(path, "mode"), "lets every user on the machine read the secret; use 0600, or 0640 with a group")
	}
}
