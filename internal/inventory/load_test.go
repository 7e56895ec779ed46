package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// withoutPositions returns the secrets with their unexported line maps cleared, so tests
// compare what callers can see.
func withoutPositions(secrets []Secret) []Secret {
	out := make([]Secret, len(secrets))
	for i, s := range secrets {
		s.pos = nil
		out[i] = s
	}
	return out
}

// problemsOf unwraps an Errors or fails the test.
func problemsOf(t *testing.T, err error) Errors {
	t.Helper()
	var probs Errors
	if !errors.As(err, &probs) {
		t.Fatalf("error is %T (%v), want inventory.Errors", err, err)
	}
	return probs
}

func TestLoadValid(t *testing.T) {
	const path = "testdata/valid.yaml"
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	grace := 15 * time.Minute
	wantDefaults := Defaults{Grace: &grace, Store: StoreFile, Tags: []string{"managed"}, CatchupWindow: DefaultCatchupWindow}
	if inv.Version != 1 || inv.Path != path || !reflect.DeepEqual(inv.Defaults, wantDefaults) {
		t.Errorf("got version %d, path %q, defaults %+v; want 1, %q, %+v", inv.Version, inv.Path, inv.Defaults, path, wantDefaults)
	}
	want := []Secret{
		{
			ID: "prod/orders-db/app", Kind: KindPostgres, Description: "orders service, read-write",
			Store: StoreRef{Type: StoreFile, Path: "prod/orders-db/app"}, Grace: 10 * time.Minute,
			Tags: []string{"prod", "orders", "managed"}, Schedule: "0 3 * * 1", Timezone: "Europe/Berlin", Line: 12,
			Postgres: &Postgres{
				Host: "orders-db.internal.example.com", Port: 5432, Database: "orders",
				SSLMode: SSLModeVerifyFull, SSLRootCert: "/etc/keyturn/ca/orders-db.pem",
				Role: "orders_app", Strategy: StrategyAlternating, Twins: []string{"orders_app_blue", "orders_app_green"},
				Admin:      Admin{Username: "keyturn_admin", Password: "file:admin/orders-db"},
				CheckQuery: "SELECT 1 FROM orders LIMIT 1", TerminateSessions: true, ConnectTimeout: 10 * time.Second,
			},
		},
		{
			// Everything left out comes from the defaults block or the built-in defaults.
			ID: "prod/orders-db/reporting", Kind: KindPostgres, Description: "nightly reporting jobs, read-only",
			Store: StoreRef{Type: StoreFile, Path: "prod/orders-db/reporting"}, Grace: 15 * time.Minute,
			Tags: []string{"prod", "reporting", "managed"}, Schedule: "@daily", Timezone: "UTC", Line: 39,
			Postgres: &Postgres{
				Host: "orders-db-replica.internal.example.com", Port: 5432, Database: "orders",
				SSLMode: SSLModeRequire, Role: "reporting", Strategy: StrategyAlternating,
				Twins:          []string{"reporting_a", "reporting_b"},
				Admin:          Admin{Username: "keyturn_admin", Password: "file:admin/orders-db#password"},
				ConnectTimeout: 5 * time.Second,
			},
		},
		{
			// An explicit 0s grace survives the defaults.
			ID: "staging/orders-db/app", Kind: KindPostgres,
			Store: StoreRef{Type: StoreFile, Path: "staging/orders-db/app"}, Grace: 0,
			Tags: []string{"staging", "managed"}, Schedule: "30 6 1 * *", Timezone: "America/New_York", Line: 53,
			Postgres: &Postgres{
				Host: "10.20.0.15", Port: 6432, Database: "orders", SSLMode: SSLModeRequire,
				Role: "orders_app", Strategy: StrategySingle,
				Admin:          Admin{Username: "keyturn_admin", Password: "env:STAGING_ORDERS_ADMIN_PASSWORD"},
				ConnectTimeout: 3 * time.Second,
			},
		},
	}
	got := withoutPositions(inv.Secrets)
	if len(got) != len(want) {
		t.Fatalf("got %d secrets, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("secret %d:\n got %+v\n     %+v\nwant %+v\n     %+v", i, got[i], *got[i].Postgres, want[i], *want[i].Postgres)
		}
	}

	// The pipeline by hand gives the same result, and defaults applied twice change nothing.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	manual, err := Parse(path, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	manual.ApplyDefaults()
	manual.ApplyDefaults()
	if err := manual.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !reflect.DeepEqual(withoutPositions(manual.Secrets), got) {
		t.Errorf("Parse+ApplyDefaults+Validate differs from Load")
	}

	s, ok := inv.Lookup("prod/orders-db/reporting")
	if !ok || s.Postgres.Role != "reporting" {
		t.Errorf("Lookup(prod/orders-db/reporting) = %+v, %v", s, ok)
	}
	if _, ok := inv.Lookup("prod/nope"); ok {
		t.Errorf("Lookup(prod/nope) found a secret")
	}
	// Parse builds no index, and a list changed after Load leaves a stale one: Lookup
	// answers the same either way.
	for _, in := range []*Inventory{inv, manual} {
		for _, want := range in.Secrets {
			if s, ok := in.Lookup(want.ID); !ok || s.ID != want.ID {
				t.Errorf("Lookup(%s) = %s, %v", want.ID, s.ID, ok)
			}
		}
	}
	first := inv.Secrets[0].ID
	inv.Secrets = inv.Secrets[1:]
	if _, ok := inv.Lookup(first); ok {
		t.Errorf("Lookup(%s) found a secret no longer in the list", first)
	}
	if s, ok := inv.Lookup("prod/orders-db/reporting"); !ok || s.Postgres.Role != "reporting" {
		t.Errorf("after the list changed, Lookup(prod/orders-db/reporting) = %+v, %v", s, ok)
	}
}

func TestLoadManyProblems(t *testing.T) {
	const path = "testdata/many_problems.yaml"
	inv, err := Load(path)
	if inv != nil {
		t.Errorf("Load returned an inventory with an error")
	}
	probs := problemsOf(t, err)
	type place struct {
		Line  int
		Field string
	}
	want := []place{
		{1, "version"},
		{3, "defaults.grace"},
		{4, "defaults.store"},
		{5, "defaults.tags[0]"},
		{7, "secrets[0].id"},
		{8, "secrets[0].kind"},
		{9, "secrets[0].grace"},
		{10, "secrets[0].tags[1]"},
		{11, "secrets[0].schedule"},
		{12, "secrets[0].timezone"},
		{13, "secrets[0].colour"},
		{15, "secrets[0].postgres.host"},
		{16, "secrets[0].postgres.port"},
		{18, "secrets[0].postgres.sslmode"},
		{20, "secrets[0].postgres.strategy"},
		{22, "secrets[0].postgres.admin.username"},
		{23, "secrets[0].postgres.admin.password"},
		{24, "secrets[0].postgres.connect_timeout"},
		{28, "secrets[1].store.type"},
		{31, "secrets[1].postgres.port"},
		{34, "secrets[1].postgres.twins"},
		{35, "secrets[1].postgres.terminate_sessions"},
		{38, "secrets[1].postgres.admin.password"},
		{39, "secrets[2].id"},
		{41, "secrets[2].schedule"},
		{46, "secrets[2].postgres.twins[1]"},
		{47, "secrets[2].postgres.admin.password"},
	}
	var got []place
	for _, p := range probs {
		got = append(got, place{p.Line, p.Field})
		if p.File != path {
			t.Errorf("problem %v has file %q, want %q", p, p.File, path)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at\n%v\nwant\n%v\nfull error:\n%v", got, want, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "inventory "+path+" has 27 problem(s):\n") {
		t.Errorf("header of %q", msg)
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error echoes the literal password:\n%s", msg)
	}
}

func TestLoadProblems(t *testing.T) {
	type want struct {
		line  int
		field string
		msg   string // a substring of the message
	}
	tests := map[string]struct {
		want []want
		// hidden must not appear anywhere in the error.
		hidden string
	}{
		"duplicate_ids":    {want: []want{{12, "secrets[1].id", `duplicate id "prod/orders-db/app", first used at line 3`}}},
		"store_path_clash": {want: []want{{15, "secrets[1].store.path", "also used by secrets[0] (line 3)"}}},
		"unknown_field": {want: []want{
			{2, "defualts", `unknown field "defualts" (did you mean "defaults"?); known fields here: version, defaults, secrets`},
			{11, "secrets[0].postgres.admin.password", "required"},
			{13, "secrets[0].postgres.admin.pasword", `unknown field "pasword" (did you mean "password"?); known fields here: username, password`},
		}},
		"literal_password": {
			want:   []want{{11, "secrets[0].postgres.admin.password", "value hidden): a literal password is never accepted; write where the password is kept instead: file:<secret-id>[#field], vault:<mount>/<path>[#field], awssm:<name>[#field] or env:<VAR_NAME>"}},
			hidden: "S3cr3t",
		},
		"literal_password_colon": {
			want:   []want{{11, "secrets[0].postgres.admin.password", "value hidden"}},
			hidden: "w0rd",
		},
		"vault_ref":         {want: []want{{11, "secrets[0].postgres.admin.password", "vault: must name the mount and the path"}}},
		"awssm_ref":         {want: []want{{11, "secrets[0].postgres.admin.password", "nothing follows awssm:"}}},
		"malformed_env_ref": {want: []want{{11, "secrets[0].postgres.admin.password", "env: must be followed by a variable name"}}},
		"bad_cron":          {want: []want{{5, "secrets[0].schedule", "not a valid cron spec"}}},
		"every_schedule":    {want: []want{{5, "secrets[0].schedule", "@every is not accepted"}}},
		"dom_dow":           {want: []want{{5, "secrets[0].schedule", "restricts both day-of-month and day-of-week"}}},
		"sub_hour":          {want: []want{{5, "secrets[0].schedule", "fires every 15m at its closest; rotations must be at least 1h apart"}}},
		"bad_timezone":      {want: []want{{6, "secrets[0].timezone", `unknown time zone "Europe/Berlinn"`}}},
		"local_timezone":    {want: []want{{5, "secrets[0].timezone", `"Local" depends on the machine`}}},
		"twins_count":       {want: []want{{9, "secrets[0].postgres.twins", "needs exactly two role names, got 1"}}},
		"twins_equal_role":  {want: []want{{9, "secrets[0].postgres.twins[0]", "must differ from role"}}},
		"twins_duplicate":   {want: []want{{9, "secrets[0].postgres.twins[1]", "must differ from the first twin"}}},
		"twins_admin":       {want: []want{{9, "secrets[0].postgres.twins[1]", "must differ from admin.username"}}},
		"twins_with_single": {want: []want{{10, "secrets[0].postgres.twins", `only used with strategy "alternating"`}}},
		"twins_default_too_long": {want: []want{
			{5, "secrets[0].postgres.twins[0]", "is 64 bytes long; PostgreSQL truncates names longer than 63 bytes, so use a shorter one; this twin name is derived from the role, so set postgres.twins explicitly"},
			{5, "secrets[0].postgres.twins[1]", "is 64 bytes long"},
		}},
		"wrong_types": {want: []want{
			{5, "secrets[0].grace", "a bare number has no unit; add one, e.g. 15s, 15m or 15h"},
			{6, "secrets[0].tags", "must be a list"},
			{11, "secrets[0].postgres.port", "must be a whole number without quotes, got a string"},
			{12, "secrets[0].postgres.terminate_sessions", "must be true or false, got a string"},
			{13, "secrets[0].postgres.connect_timeout", "must be more than 0s and at most 1m"},
		}},
		"duplicate_key":              {want: []want{{8, "secrets[0].postgres.host", "set twice (first at line 6)"}}},
		"syntax_error":               {want: []want{{5, "", "YAML syntax error: did not find expected '-' indicator"}}},
		"empty":                      {want: []want{{1, "", "the file is empty"}}},
		"two_documents":              {want: []want{{12, "", "a second YAML document starts here"}}},
		"postgres_missing":           {want: []want{{3, "secrets[0].postgres", `required for kind "postgres"`}}},
		"missing_version_no_secrets": {want: []want{{1, "version", "required; add version: 1"}, {3, "secrets", "no secrets listed"}}},
		"merge_key": {want: []want{
			{2, "admin", `unknown field "admin"`},
			// The missing username is not reported again: it is what the merge key meant.
			{12, "secrets[0].postgres.admin", "YAML merge keys (<<) are not supported"},
		}},
		"not_a_mapping": {want: []want{
			{3, "secrets[0]", "must be a mapping of id, kind"},
			{6, "secrets[1].postgres", "must be a mapping of host, port"},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "problems", name+".yaml")
			inv, err := Load(path)
			if inv != nil {
				t.Errorf("Load returned an inventory with an error")
			}
			probs := problemsOf(t, err)
			if len(probs) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tc.want), err)
			}
			for i, w := range tc.want {
				p := probs[i]
				if p.File != path || p.Line != w.line || p.Field != w.field || !strings.Contains(p.Message, w.msg) {
					t.Errorf("problem %d:\n got %s\nwant %s:%d: %s: ...%s...", i, p, path, w.line, w.field, w.msg)
				}
			}
			if tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
				t.Errorf("error echoes %q:\n%v", tc.hidden, err)
			}
		})
	}
}

func TestLoadAnchors(t *testing.T) {
	inv, err := Load("testdata/anchors.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a, b := inv.Secrets[0].Postgres.Admin, inv.Secrets[1].Postgres.Admin
	if a != b || a.Username != "keyturn_admin" || a.Password != "file:admin/orders-db" {
		t.Errorf("aliased admin blocks differ: %+v %+v", a, b)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestParseRejectsDecodeProblems(t *testing.T) {
	inv, err := Parse("inline.yaml", []byte("version: 1\nsecrets:\n  - id: a\n    grace: 5\n"))
	if inv != nil {
		t.Errorf("Parse returned an inventory with an error")
	}
	probs := problemsOf(t, err)
	if len(probs) != 1 || probs[0].Line != 4 || probs[0].Field != "secrets[0].grace" {
		t.Errorf("got %v", err)
	}
}

func TestValidateBuiltInventory(t *testing.T) {
	// An inventory built in code has no line information; Validate still works on it.
	inv := &Inventory{
		Version: 1,
		Path:    "built",
		Secrets: []Secret{{
			ID:   secret.ID("prod/x"),
			Kind: KindPostgres,
			Postgres: &Postgres{
				Host: "db", Database: "x", Role: "x",
				Admin: Admin{Username: "admin", Password: "env:X_ADMIN"},
			},
		}},
	}
	inv.ApplyDefaults()
	if err := inv.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	p := inv.Secrets[0].Postgres
	if inv.Secrets[0].Grace != DefaultGrace || p.Port != DefaultPostgresPort || p.ConnectTimeout != DefaultConnectTimeout ||
		!reflect.DeepEqual(p.Twins, []string{"x_a", "x_b"}) {
		t.Errorf("defaults not applied: %+v %+v", inv.Secrets[0], *p)
	}

	p.Port = 0
	probs := problemsOf(t, inv.Validate())
	if len(probs) != 1 || probs[0].Field != "secrets[0].postgres.port" || probs[0].Line != 0 {
		t.Errorf("got %v", probs)
	}
}
