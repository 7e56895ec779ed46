package inventory

import (
	"strings"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// ApplyDefaults fills every field the file left empty: first from the defaults block, then
// from the built-in defaults (the Default constants). Tags from the defaults block are
// merged into each secret's own. It changes nothing that was set, so calling it twice is
// harmless, and it never fails: whether the result makes sense is Validate's job.
func (inv *Inventory) ApplyDefaults() {
	if inv.pos == nil {
		inv.pos = positions{}
	}
	if inv.Defaults.Grace == nil {
		g := DefaultGrace
		inv.Defaults.Grace = &g
	}
	if inv.Defaults.Store == "" {
		inv.Defaults.Store = DefaultStore
	}
	if !inv.pos.has("defaults.catchup_window") && inv.Defaults.CatchupWindow == 0 {
		inv.Defaults.CatchupWindow = DefaultCatchupWindow
	}
	for i := range inv.Secrets {
		inv.Secrets[i].applyDefaults(inv.Defaults)
	}
	inv.Notifications.applyDefaults()
}

// applyDefaults fills the empty fields of one secret.
func (s *Secret) applyDefaults(d Defaults) {
	if s.pos == nil {
		s.pos = positions{}
	}
	if s.Store.Type == "" {
		s.Store.Type = d.Store
	}
	if s.Store.Type == StoreVault && s.Store.Mount == "" {
		s.Store.Mount = DefaultVaultMount
	}
	if s.Store.Path == "" {
		s.Store.Path = string(s.ID)
	}
	if s.unset("grace", s.Grace == 0) && d.Grace != nil {
		s.Grace = *d.Grace
	}
	s.Tags = mergeTags(s.Tags, d.Tags)
	if s.unset("window", s.Window == 0) {
		s.Window = d.Window
	}
	if s.Timezone == "" {
		s.Timezone = DefaultTimezone
	}
	if s.Owner == "" {
		s.Owner = d.Owner
	}
	if s.Sensitivity == "" && !s.pos.has("sensitivity") {
		s.Sensitivity = d.Sensitivity
	}
	if s.unset("max_age", s.MaxAge == 0) {
		s.MaxAge = d.MaxAge
	}
	s.RevokeGate.applyDefaults(d.RevokeGate, func(f string) bool { return s.pos.has(strings.TrimSuffix("revoke_gate."+f, ".")) })
	if s.Postgres != nil {
		s.Postgres.applyDefaults(s)
	}
	if k := s.AWSIAM; k != nil {
		if s.unset("awsiam.delete_after", k.DeleteAfter == 0) {
			k.DeleteAfter = DefaultIAMDeleteAfter
		}
		if k.ConsistencyTimeout == 0 {
			k.ConsistencyTimeout = DefaultIAMConsistencyTimeout
		}
	}
	if k := s.HTTPAPI; k != nil && k.Timeout == 0 {
		k.Timeout = DefaultHTTPTimeout
	}
	if k := s.VaultPKI; k != nil {
		if k.Mount == "" {
			k.Mount = DefaultPKIMount
		}
		k.Certificate.applyDefaults()
	}
	if k := s.LocalCA; k != nil {
		k.Certificate.applyDefaults()
	}
	if k := s.Redis; k != nil && s.unset("redis.timeout", k.Timeout == 0) {
		k.Timeout = DefaultRedisTimeout
	}
	if k := s.MariaDB; k != nil {
		k.applyDefaults(s)
	}
}

// applyDefaults fills the empty fields of a mariadb block.
func (k *MariaDB) applyDefaults(s *Secret) {
	if s.unset("mariadb.port", k.Port == 0) {
		k.Port = DefaultMariaDBPort
	}
	if k.TLS == "" {
		k.TLS = DefaultMariaDBTLS
	}
	if k.Strategy == "" {
		k.Strategy = DefaultStrategy
	}
	if k.Strategy == StrategyAlternating && len(k.Twins) == 0 && k.Role != "" {
		k.Twins = []string{k.Role + "_a", k.Role + "_b"}
	}
	if k.HostPattern == "" && !s.pos.has("mariadb.host_pattern") {
		k.HostPattern = DefaultMariaDBHostPattern
	}
	if s.unset("mariadb.connect_timeout", k.ConnectTimeout == 0) {
		k.ConnectTimeout = DefaultConnectTimeout
	}
}

func (c *Certificate) applyDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultCertTTL
	}
	if c.KeyType == "" {
		c.KeyType = DefaultKeyType
	}
	if c.KeyType == "rsa" && c.KeyBits == 0 {
		c.KeyBits = DefaultRSABits
	}
	if c.RenewAt == 0 {
		c.RenewAt = DefaultRenewAt
	}
}

// applyDefaults fills the empty fields of a postgres block; s is the secret holding it,
// whose positions say which fields the file wrote.
func (p *Postgres) applyDefaults(s *Secret) {
	if s.unset("postgres.port", p.Port == 0) {
		p.Port = DefaultPostgresPort
	}
	if p.SSLMode == "" {
		p.SSLMode = DefaultSSLMode
	}
	if p.Strategy == "" {
		p.Strategy = DefaultStrategy
	}
	// Twins are named after the role so they sort next to it in \du and are obviously
	// Keyturn's. Without a role there is nothing to name them after; Validate reports the
	// missing role instead.
	if p.Strategy == StrategyAlternating && len(p.Twins) == 0 && p.Role != "" {
		p.Twins = []string{p.Role + "_a", p.Role + "_b"}
	}
	if s.unset("postgres.connect_timeout", p.ConnectTimeout == 0) {
		p.ConnectTimeout = DefaultConnectTimeout
	}
}

// mergeTags returns own followed by the inherited tags it lacks. Own tags come first and
// keep their order, so a duplicate the file wrote is still there for Validate to report.
// The result is a new slice so secrets never share a backing array.
func mergeTags(own, inherited []string) []string {
	out := append([]string(nil), own...)
	for _, t := range inherited {
		if !yamlfields.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
