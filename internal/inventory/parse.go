package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyturn/keyturn/internal/yamlfields"
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
	secretFields   = []string{"id", "kind", "description", "owner", "sensitivity", "consumers", "store", "grace", "tags", "schedule", "timezone", "window", "max_age", "revoke_gate", "postgres", "awsiam", "httpapi", "vaultpki", "localca", "redis", "mariadb"}
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
		return nil, Errors(d.Problems).orNil()
	}
	// Validate what did decode even when some fields did not, so one run shows everything
	// to fix; problems under a field that failed to decode are dropped as repeats.
	inv.ApplyDefaults()
	var invalid Errors
	if err := inv.Validate(); err != nil && !errors.As(err, &invalid) {
		return nil, fmt.Errorf("validate inventory: %w", err)
	}
	all := append(append(Errors(nil), d.Problems...), d.Suppress(invalid)...)
	if err := all.orNil(); err != nil {
		return nil, err
	}
	inv.buildIndex()
	return inv, nil
}

// readFile reads at most maxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Sized from the file, so a large inventory is read into one buffer, not grown
	// through a dozen copies; the limit still holds when the size is wrong (a device, a
	// file growing as it is read).
	var buf bytes.Buffer
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() <= maxFileSize {
		buf.Grow(int(st.Size()) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(f, maxFileSize+1)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
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
	if err := Errors(d.Problems).orNil(); err != nil {
		return nil, err
	}
	return inv, nil
}

// decode is Parse that keeps what it could decode next to the problems it found. The
// inventory is nil when nothing could be decoded at all.
func decode(name string, data []byte) (*Inventory, *decoder) {
	d := &decoder{&yamlfields.Decoder{Report: report{File: name}}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		d.syntax(err, data)
		return nil, d
	}
	if len(doc.Content) == 0 {
		d.Fail(1, "", "the file is empty; start it with version: 1 and a secrets list")
		return nil, d
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.Fail(extra.Line, "", "a second YAML document starts here; an inventory is one document, so remove the '---' and what follows or merge it into the first")
	case !errors.Is(err, io.EOF):
		d.syntax(err, data)
	}

	root := yamlfields.Resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		d.Fail(root.Line, "", "the top level must be a mapping with version, defaults and secrets, got %s", yamlfields.Describe(root))
		return nil, d
	}
	inv := &Inventory{Path: name, pos: positions{}}
	top := block{D: d.Decoder, Fields: d.Fields(root, "", topFields), Pos: inv.pos, Line: root.Line}
	top.Integer("version", &inv.Version)
	if b, ok := top.Sub("defaults", defaultsFields); ok {
		var grace time.Duration
		if b.Duration("grace", &grace) {
			inv.Defaults.Grace = &grace
		}
		b.Str("store", &inv.Defaults.Store)
		b.StrList("tags", &inv.Defaults.Tags)
		b.Duration("window", &inv.Defaults.Window)
		b.Duration("catchup_window", &inv.Defaults.CatchupWindow)
		b.Str("owner", &inv.Defaults.Owner)
		b.Duration("max_age", &inv.Defaults.MaxAge)
		b.Str("sensitivity", &inv.Defaults.Sensitivity)
		if gb, ok := b.Sub("revoke_gate", revokeGateFields); ok {
			revokeGate(gb, &inv.Defaults.RevokeGate)
		}
	}
	d.secrets(top, inv)
	d.notifications(top, inv)
	return inv, d
}

// secrets decodes the secrets list into inv.
func (d *decoder) secrets(top block, inv *Inventory) {
	if e, ok := top.Fields["secrets"]; ok && e.Val.Kind == yaml.SequenceNode && len(e.Val.Content) > 0 {
		inv.Secrets = make([]Secret, 0, len(e.Val.Content)) // a Secret is large: copy none of them twice
	}
	d.mappings(top, "secrets", "a list of secrets, each starting with '- id: ...'", secretFields, func(line int, b *block) {
		s := Secret{Line: line, pos: make(positions, 16)} // about as many fields as a postgres secret writes
		if b != nil {
			b.Pos = s.pos
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
	path := yamlfields.Join(b.Path, name)
	e, ok := b.Take(name)
	if !ok || yamlfields.IsNull(e.Val) {
		return
	}
	if e.Val.Kind != yaml.SequenceNode {
		d.Fail(e.Val.Line, path, "must be %s, got %s", want, yamlfields.Describe(e.Val))
		return
	}
	for i, n := range e.Val.Content {
		n = yamlfields.Resolve(n)
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		if f := d.Fields(n, itemPath, known); f != nil {
			item(n.Line, &block{D: d.Decoder, Fields: f, Path: itemPath, Line: n.Line})
			continue
		}
		item(n.Line, nil)
	}
}

// secret decodes the fields of one secret.
func (d *decoder) secret(b block, s *Secret) {
	var id string
	b.Str("id", &id)
	s.ID = secret.ID(id)
	b.Str("kind", &s.Kind)
	b.Str("description", &s.Description)
	b.Str("owner", &s.Owner)
	b.Str("sensitivity", &s.Sensitivity)
	d.consumers(b, s)
	if st, ok := b.Sub("store", storeFields); ok {
		st.Str("type", &s.Store.Type)
		st.Str("path", &s.Store.Path)
		st.Str("mount", &s.Store.Mount)
	}
	b.Duration("grace", &s.Grace)
	b.StrList("tags", &s.Tags)
	b.Str("schedule", &s.Schedule)
	b.Str("timezone", &s.Timezone)
	b.Duration("window", &s.Window)
	b.Duration("max_age", &s.MaxAge)
	if gb, ok := b.Sub("revoke_gate", revokeGateFields); ok {
		revokeGate(gb, &s.RevokeGate)
	}
	if pb, ok := b.Sub("postgres", postgresFields); ok {
		s.Postgres = d.postgres(pb)
	}
	if kb, ok := b.Sub("awsiam", awsiamFields); ok {
		s.AWSIAM = &AWSIAM{}
		kb.Str("user", &s.AWSIAM.User)
		kb.Boolean("delete_inactive", &s.AWSIAM.DeleteInactive)
		kb.Duration("delete_after", &s.AWSIAM.DeleteAfter)
		kb.Duration("consistency_timeout", &s.AWSIAM.ConsistencyTimeout)
	}
	if kb, ok := b.Sub("httpapi", httpapiFields); ok {
		s.HTTPAPI = d.httpapi(kb)
	}
	if kb, ok := b.Sub("vaultpki", vaultpkiFields); ok {
		s.VaultPKI = &VaultPKI{}
		kb.Str("mount", &s.VaultPKI.Mount)
		kb.Str("role", &s.VaultPKI.Role)
		kb.Str("ca_file", &s.VaultPKI.CAFile)
		certificate(kb, &s.VaultPKI.Certificate)
	}
	if kb, ok := b.Sub("localca", localcaFields); ok {
		s.LocalCA = &LocalCA{}
		var cert, key string
		kb.Str("ca_cert", &cert)
		kb.Str("ca_key", &key)
		s.LocalCA.CACert, s.LocalCA.CAKey = Ref(cert), Ref(key)
		kb.Str("crl_file", &s.LocalCA.CRLFile)
		certificate(kb, &s.LocalCA.Certificate)
	}
	if kb, ok := b.Sub("redis", redisFields); ok {
		s.Redis = redisBlock(kb)
	}
	if kb, ok := b.Sub("mariadb", mariadbFields); ok {
		s.MariaDB = mariadbBlock(kb)
	}
}

// mariadbBlock decodes a mariadb block.
func mariadbBlock(b block) *MariaDB {
	k := &MariaDB{}
	b.Str("host", &k.Host)
	b.Integer("port", &k.Port)
	b.Str("tls", &k.TLS)
	b.Str("ca_file", &k.CAFile)
	b.Str("server_name", &k.ServerName)
	b.Boolean("allow_plaintext", &k.AllowPlaintext)
	b.Str("strategy", &k.Strategy)
	b.Str("role", &k.Role)
	b.StrList("twins", &k.Twins)
	b.Str("user", &k.User)
	b.Str("host_pattern", &k.HostPattern)
	adminBlock(b, &k.Admin)
	b.Str("check_query", &k.CheckQuery)
	b.Boolean("terminate_sessions", &k.TerminateSessions)
	b.Duration("connect_timeout", &k.ConnectTimeout)
	return k
}

// redisBlock decodes a redis block.
func redisBlock(b block) *Redis {
	k := &Redis{}
	b.StrList("nodes", &k.Nodes)
	b.Str("user", &k.User)
	adminBlock(b, &k.Admin)
	b.StrList("check", &k.Check)
	b.Boolean("tls", &k.TLS)
	b.Str("ca_file", &k.CAFile)
	b.Str("server_name", &k.ServerName)
	b.Boolean("allow_plaintext", &k.AllowPlaintext)
	b.Duration("timeout", &k.Timeout)
	return k
}

// httpapi decodes an httpapi block.
func (d *decoder) httpapi(b block) *HTTPAPI {
	h := &HTTPAPI{}
	var admin string
	b.Str("admin", &admin)
	h.Admin = Ref(admin)
	for _, c := range []struct {
		name string
		call *HTTPCall
	}{{"create", &h.Create}, {"test", &h.Test}, {"revoke", &h.Revoke}} {
		call := c.call
		if cb, ok := b.Sub(c.name, httpCallFields); ok {
			httpCall(cb, call)
		}
	}
	if ub, ok := b.Sub("in_use", httpUsageFields); ok {
		h.InUse = &HTTPUsageCheck{}
		httpCall(ub, &h.InUse.HTTPCall)
		ub.Str("last_used", &h.InUse.LastUsed)
		ub.Str("flag", &h.InUse.Flag)
		ub.Duration("delay", &h.InUse.Delay)
	}
	b.Str("key_id", &h.KeyID)
	b.Str("key_secret", &h.KeySecret)
	b.Duration("timeout", &h.Timeout)
	b.Str("ca_file", &h.CAFile)
	return h
}

// httpCall decodes the fields of one declared request.
func httpCall(b block, call *HTTPCall) {
	b.Str("method", &call.Method)
	b.Str("url", &call.URL)
	b.StrMap("headers", &call.Headers)
	b.Str("body", &call.Body)
	b.IntList("success", &call.Success)
	b.IntList("gone", &call.Gone)
}

// certificate decodes the certificate fields shared by the certificate kinds.
func certificate(b block, c *Certificate) {
	b.Str("common_name", &c.CommonName)
	b.StrList("alt_names", &c.AltNames)
	b.StrList("ip_sans", &c.IPSANs)
	b.Duration("ttl", &c.TTL)
	b.Str("key_type", &c.KeyType)
	b.Integer("key_bits", &c.KeyBits)
	b.Number("renew_at", &c.RenewAt)
}

// adminBlock decodes the admin block of b, if it has one: a user name and a reference
// to the password.
func adminBlock(b block, a *Admin) {
	if ab, ok := b.Sub("admin", adminFields); ok {
		ab.Str("username", &a.Username)
		var ref string
		ab.Str("password", &ref)
		a.Password = Ref(ref)
	}
}

// postgres decodes a postgres block.
func (d *decoder) postgres(b block) *Postgres {
	p := &Postgres{}
	b.Str("host", &p.Host)
	b.Integer("port", &p.Port)
	b.Str("database", &p.Database)
	b.Str("sslmode", &p.SSLMode)
	b.Str("sslrootcert", &p.SSLRootCert)
	b.Boolean("allow_plaintext", &p.AllowPlaintext)
	b.Str("role", &p.Role)
	b.Str("strategy", &p.Strategy)
	b.StrList("twins", &p.Twins)
	adminBlock(b, &p.Admin)
	b.Str("check_query", &p.CheckQuery)
	b.Boolean("terminate_sessions", &p.TerminateSessions)
	b.Duration("connect_timeout", &p.ConnectTimeout)
	return p
}
