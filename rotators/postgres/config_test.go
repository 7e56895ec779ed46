package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

func validConfig() Config {
	return Config{Host: "db.internal", Role: "app", AdminUser: "keyturn_admin", AdminPassword: secret.NewSensitive("admin-password")}
}

func TestConfigDefaults(t *testing.T) {
	cfg := validConfig()
	cfg.ApplyDefaults()
	if cfg.Port != 5432 || cfg.Database != "postgres" || cfg.SSLMode != "require" || cfg.Strategy != StrategyAlternating ||
		cfg.Twins != [2]string{"app_a", "app_b"} || cfg.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	single := validConfig()
	single.Strategy = StrategySingle
	single.ApplyDefaults()
	if single.Twins != [2]string{} {
		t.Errorf("single strategy got default twins %v", single.Twins)
	}
}

func TestConfigValidate(t *testing.T) {
	long := strings.Repeat("r", 64)
	for name, c := range map[string]struct {
		edit func(*Config)
		want []string // substrings of the error; none means valid
	}{
		"minimal":               {edit: func(*Config) {}},
		"single":                {edit: func(c *Config) { c.Strategy = StrategySingle }},
		"single keeps twins":    {edit: func(c *Config) { c.Strategy = StrategySingle; c.Twins = [2]string{"x1", "x2"} }},
		"explicit twins":        {edit: func(c *Config) { c.Twins = [2]string{"blue", "green"} }},
		"empty":                 {edit: func(c *Config) { *c = Config{} }, want: []string{"host is empty", "role: is empty", "admin user: is empty"}},
		"bad port":              {edit: func(c *Config) { c.Port = 70000 }, want: []string{"port 70000"}},
		"bad sslmode":           {edit: func(c *Config) { c.SSLMode = "sometimes" }, want: []string{`sslmode "sometimes"`}},
		"bad strategy":          {edit: func(c *Config) { c.Strategy = "triple" }, want: []string{`strategy "triple"`}},
		"one twin":              {edit: func(c *Config) { c.Twins = [2]string{"blue", ""} }, want: []string{"twin 2: is empty"}},
		"same twins":            {edit: func(c *Config) { c.Twins = [2]string{"blue", "blue"} }, want: []string{"both twins"}},
		"twin is role":          {edit: func(c *Config) { c.Twins = [2]string{"app", "blue"} }, want: []string{"managed role itself"}},
		"admin is role":         {edit: func(c *Config) { c.AdminUser = "app" }, want: []string{"must not be the managed role"}},
		"admin is twin":         {edit: func(c *Config) { c.AdminUser = "app_b" }, want: []string{"must not be the managed role"}},
		"reserved":              {edit: func(c *Config) { c.Role = "pg_monitor" }, want: []string{"reserved prefix"}},
		"too long":              {edit: func(c *Config) { c.Role = long }, want: []string{"longer than 63"}},
		"derived twin too long": {edit: func(c *Config) { c.Role = long[:62] }, want: []string{"twin 1:", "twin 2:"}},
		"negative timeout":      {edit: func(c *Config) { c.ConnectTimeout = -1 }, want: []string{"timeout is negative"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := validConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := New(cfg); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "admin-password") {
				t.Error("error holds the admin password")
			}
			if _, err := New(cfg); !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestGeneratePicksTheInactiveTwin(t *testing.T) {
	r := mustNew(t, validConfig())
	version := func(role string) *secret.Version {
		return &secret.Version{Token: "t", Metadata: map[string]string{MetadataRole: role}}
	}
	for _, c := range []struct {
		current *secret.Version
		want    string
	}{
		{nil, "app_a"},
		{version("app_a"), "app_b"},
		{version("app_b"), "app_a"},
		{version("app"), "app_a"},
		{version("someone_else"), "app_a"},
	} {
		g, err := r.Generate(t.Context(), rotators.GenerateRequest{Token: "t", Current: c.current})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			MetadataRole: c.want, MetadataUsername: c.want, MetadataStrategy: StrategyAlternating,
			// AWS's structure for database credentials, the user being this version's twin;
			// port and database are the defaults.
			"engine": "postgres", "host": "db.internal", "port": "5432", "dbname": "postgres",
		}
		for k, v := range want {
			if g.Metadata[k] != v {
				t.Errorf("current %v: metadata %q = %q, want %q", c.current, k, g.Metadata[k], v)
			}
		}
		if len(g.Material) != 1 || len(g.Material.Get(FieldPassword).Reveal()) != 43 {
			t.Errorf("material should be one 43-character password")
		}
	}
}

// TestRefusesForeignRoles checks the defence against corrupt metadata. The config points
// at a closed port, so a rotator that tried to connect would fail differently.
func TestRefusesForeignRoles(t *testing.T) {
	cfg := validConfig()
	cfg.Host, cfg.Port = "127.0.0.1", 1
	alt := mustNew(t, cfg)
	cfg.Strategy = StrategySingle
	single := mustNew(t, cfg)
	material := newMaterial()
	v := func(role string) secret.Version {
		return secret.Version{Token: "t", Metadata: map[string]string{MetadataRole: role}}
	}
	cases := []struct {
		name string
		err  error
	}{
		{"revoke stranger", alt.Revoke(t.Context(), rotators.RevokeRequest{Version: v("postgres")})},
		{"revoke no role", alt.Revoke(t.Context(), rotators.RevokeRequest{Version: v("")})},
		{"revoke stranger, single", single.Revoke(t.Context(), rotators.RevokeRequest{Version: v("postgres")})},
		{"apply group role", alt.Apply(t.Context(), rotators.ApplyRequest{Version: v("app"), Material: material})},
		{"apply twin, single", single.Apply(t.Context(), rotators.ApplyRequest{Version: v("app_a"), Material: material})},
		{"apply without password", alt.Apply(t.Context(), rotators.ApplyRequest{Version: v("app_a")})},
		{"test stranger", alt.Test(t.Context(), rotators.TestRequest{Version: v("postgres"), Material: material})},
	}
	for _, c := range cases {
		if !errors.Is(c.err, rotators.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", c.name, c.err)
		}
	}
	// Same role in Keep: nothing to do, so no connection is even attempted.
	keep := v("app")
	if err := single.Revoke(t.Context(), rotators.RevokeRequest{Version: v("app"), Keep: &keep}); err != nil {
		t.Errorf("single revoke with Keep on the same role: %v", err)
	}
}

func newMaterial() secret.Material {
	return secret.Material{FieldPassword: secret.NewSensitive(newPassword())}
}
