package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/secret"
)

// maxFileSize bounds what Load reads, so pointing it at a device or a huge file by
// mistake fails fast instead of exhausting memory. Real inventories are a few kilobytes.
const maxFileSize = 4 << 20

// The fields known at each level of the file, in the order they are documented. They are
// listed in "unknown field" problems.
var (
	topFields      = []string{"version", "defaults", "secrets", "notifications"}
	defaultsFields = []string{"grace", "store", "tags", "window", "catchup_window", "owner", "max_age", "sensitivity", "revoke_gate"}
	secretFields   = []string{"id", "kind", "description", "owner", "sensitivity", "consumers", "store", "grace", "tags", "schedule", "timezone", "window", "max_age", "revoke_gate", "postgres", "awsiam", "httpapi", "vaultpki", "localca"}
	storeFields    = []string{"type", "path", "mount"}
	postgresFields = []string{"host", "port", "database", "sslmode", "sslrootcert", "allow_plaintext", "role", "strategy", "twins", "admin", "check_query", "terminate_sessions", "connect_timeout"}
	adminFields    = []string{"username", "password"}
)

// Load reads the inventory at path, applies defaults and validates it. It returns either a
// valid inventory or an error; when the file itself is the problem the error is an Errors
// holding every problem found, decoding and validation together.
func Load(path string) (*Inventory, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	inv, d := decode(path, data)
	if inv == nil {
		return nil, d.problems.orNil()
	}
	// Validate what did decode even when some fields did not, so one run shows everything
	// to fix; problems under a field that failed to decode are dropped as repeats.
	inv.ApplyDefaults()
	var invalid Errors
	if err := inv.Validate(); err != nil && !errors.As(err, &invalid) {
		return nil, fmt.Errorf("validate inventory: %w", err)
	}
	all := append(append(Errors(nil), d.problems...), d.suppress(invalid)...)
	if err := all.orNil(); err != nil {
		return nil, err
	}
	return inv, nil
}

// readFile reads at most maxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes; an inventory is a short YAML file", maxFileSize)
	}
	return data, nil
}

// Parse decodes an inventory from data; name is used as the file name in problems. It
// checks YAML syntax, field names and value types, but not values: call ApplyDefaults and
// Validate next, or use Load. On any problem it returns nil and an Errors.
func Parse(name string, data []byte) (*Inventory, error) {
	inv, d := decode(name, data)
	if err := d.problems.orNil(); err != nil {
		return nil, err
	}
	return inv, nil
}

// decode is Parse that keeps what it could decode next to the problems it found. The
// inventory is nil when nothing could be decoded at all.
func decode(name string, data []byte) (*Inventory, *decoder) {
	d := &decoder{report: report{file: name}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		d.syntax(err, data)
		return nil, d
	}
	if len(doc.Content) == 0 {
		d.fail(1, "", "the file is empty; start it with version: 1 and a secrets list")
		return nil, d
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.fail(extra.Line, "", "a second YAML document starts here; an inventory is one document, so remove the '---' and what follows or merge it into the first")
	case !errors.Is(err, io.EOF):
		d.syntax(err, data)
	}

	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the top level must be a mapping with version, defaults and secrets, got %s", describe(root))
		return nil, d
	}
	inv := &Inventory{Path: name, pos: positions{}}
	top := block{d: d, fields: d.fields(root, "", topFields), pos: inv.pos}
	top.integer("version", &inv.Version)
	if b, ok := top.sub("defaults", defaultsFields); ok {
		var grace time.Duration
		if b.duration("grace", &grace) {
			inv.Defaults.Grace = &grace
		}
		b.str("store", &inv.Defaults.Store)
		b.strList("tags", &inv.Defaults.Tags)
		b.duration("window", &inv.Defaults.Window)
		b.duration("catchup_window", &inv.Defaults.CatchupWindow)
		b.str("owner", &inv.Defaults.Owner)
		b.duration("max_age", &inv.Defaults.MaxAge)
		b.str("sensitivity", &inv.Defaults.Sensitivity)
		if gb, ok := b.sub("revoke_gate", revokeGateFields); ok {
			revokeGate(gb, &inv.Defaults.RevokeGate)
		}
	}
	d.secrets(top, inv)
	d.notifications(top, inv)
	return inv, d
}

// secrets decodes the secrets list into inv.
func (d *decoder) secrets(top block, inv *Inventory) {
	d.mappings(top, "secrets", "a list of secrets, each starting with '- id: ...'", secretFields, func(line int, b *block) {
		s := Secret{Line: line, pos: positions{}}
		if b != nil {
			b.pos = s.pos
			d.secret(*b, &s)
		}
		inv.Secrets = append(inv.Secrets, s)
	})
}

// mappings decodes the list name of b item by item: each is passed
// to item with its line and, when it is a mapping, as a block (pos unset, for item to
// fill in). An item that is not a mapping is passed too, with a nil block, so the indexes
// in problems about later items match the file.
func (d *decoder) mappings(b block, name, want string, known []string, item func(line int, b *block)) {
	path := join(b.path, name)
	e, ok := b.take(name)
	if !ok || isNull(e.val) {
		return
	}
	if e.val.Kind != yaml.SequenceNode {
		d.fail(e.val.Line, path, "must be %s, got %s", want, describe(e.val))
		return
	}
	for i, n := range e.val.Content {
		n = resolve(n)
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		if f := d.fields(n, itemPath, known); f != nil {
			item(n.Line, &block{d: d, fields: f, path: itemPath})
			continue
		}
		item(n.Line, nil)
	}
}

// secret decodes the fields of one secret.
func (d *decoder) secret(b block, s *Secret) {
	var id string
	b.str("id", &id)
	s.ID = secret.ID(id)
	b.str("kind", &s.Kind)
	b.str("description", &s.Description)
	b.str("owner", &s.Owner)
	b.str("sensitivity", &s.Sensitivity)
	d.consumers(b, s)
	if st, ok := b.sub("store", storeFields); ok {
		st.str("type", &s.Store.Type)
		st.str("path", &s.Store.Path)
		st.str("mount", &s.Store.Mount)
	}
	b.duration("grace", &s.Grace)
	b.strList("tags", &s.Tags)
	b.str("schedule", &s.Schedule)
	b.str("timezone", &s.Timezone)
	b.duration("window", &s.Window)
	b.duration("max_age", &s.MaxAge)
	if gb, ok := b.sub("revoke_gate", revokeGateFields); ok {
		revokeGate(gb, &s.RevokeGate)
	}
	if pb, ok := b.sub("postgres", postgresFields); ok {
		s.Postgres = d.postgres(pb)
	}
	if kb, ok := b.sub("awsiam", awsiamFields); ok {
		s.AWSIAM = &AWSIAM{}
		kb.str("user", &s.AWSIAM.User)
		kb.boolean("delete_inactive", &s.AWSIAM.DeleteInactive)
		kb.duration("delete_after", &s.AWSIAM.DeleteAfter)
		kb.duration("consistency_timeout", &s.AWSIAM.ConsistencyTimeout)
	}
	if kb, ok := b.sub("httpapi", httpapiFields); ok {
		s.HTTPAPI = d.httpapi(kb)
	}
	if kb, ok := b.sub("vaultpki", vaultpkiFields); ok {
		s.VaultPKI = &VaultPKI{}
		kb.str("mount", &s.VaultPKI.Mount)
		kb.str("role", &s.VaultPKI.Role)
		kb.str("ca_file", &s.VaultPKI.CAFile)
		certificate(kb, &s.VaultPKI.Certificate)
	}
	if kb, ok := b.sub("localca", localcaFields); ok {
		s.LocalCA = &LocalCA{}
		var cert, key string
		kb.str("ca_cert", &cert)
		kb.str("ca_key", &key)
		s.LocalCA.CACert, s.LocalCA.CAKey = Ref(cert), Ref(key)
		kb.str("crl_file", &s.LocalCA.CRLFile)
		certificate(kb, &s.LocalCA.Certificate)
	}
}

// httpapi decodes an httpapi block.
func (d *decoder) httpapi(b block) *HTTPAPI {
	h := &HTTPAPI{}
	var admin string
	b.str("admin", &admin)
	h.Admin = Ref(admin)
	for _, c := range []struct {
		name string
		call *HTTPCall
	}{{"create", &h.Create}, {"test", &h.Test}, {"revoke", &h.Revoke}} {
		call := c.call
		if cb, ok := b.sub(c.name, httpCallFields); ok {
			httpCall(cb, call)
		}
	}
	if ub, ok := b.sub("in_use", httpUsageFields); ok {
		h.InUse = &HTTPUsageCheck{}
		httpCall(ub, &h.InUse.HTTPCall)
		ub.str("last_used", &h.InUse.LastUsed)
		ub.str("flag", &h.InUse.Flag)
		ub.duration("delay", &h.InUse.Delay)
	}
	b.str("key_id", &h.KeyID)
	b.str("key_secret", &h.KeySecret)
	b.duration("timeout", &h.Timeout)
	b.str("ca_file", &h.CAFile)
	return h
}

// httpCall decodes the fields of one declared request.
func httpCall(b block, call *HTTPCall) {
	b.str("method", &call.Method)
	b.str("url", &call.URL)
	b.strMap("headers", &call.Headers)
	b.str("body", &call.Body)
	b.intList("success", &call.Success)
	b.intList("gone", &call.Gone)
}

// certificate decodes the certificate fields shared by the certificate kinds.
func certificate(b block, c *Certificate) {
	b.str("common_name", &c.CommonName)
	b.strList("alt_names", &c.AltNames)
	b.strList("ip_sans", &c.IPSANs)
	b.duration("ttl", &c.TTL)
	b.str("key_type", &c.KeyType)
	b.integer("key_bits", &c.KeyBits)
	b.number("renew_at", &c.RenewAt)
}

// postgres decodes a postgres block.
func (d *decoder) postgres(b block) *Postgres {
	p := &Postgres{}
	b.str("host", &p.Host)
	b.integer("port", &p.Port)
	b.str("database", &p.Database)
	b.str("sslmode", &p.SSLMode)
	b.str("sslrootcert", &p.SSLRootCert)
	b.boolean("allow_plaintext", &p.AllowPlaintext)
	b.str("role", &p.Role)
	b.str("strategy", &p.Strategy)
	b.strList("twins", &p.Twins)
	if ab, ok := b.sub("admin", adminFields); ok {
		ab.str("username", &p.Admin.Username)
		var ref string
		ab.str("password", &ref)
		p.Admin.Password = Ref(ref)
	}
	b.str("check_query", &p.CheckQuery)
	b.boolean("terminate_sessions", &p.TerminateSessions)
	b.duration("connect_timeout", &p.ConnectTimeout)
	return p
}
