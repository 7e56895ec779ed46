package inventory

import (
	"fmt"
	"strings"
	"testing"
)

// pgSecret writes one postgres secret for an inline inventory.
func pgSecret(id, host string, port int, extra string) string {
	return fmt.Sprintf(`  - id: %s
    kind: postgres
    postgres:
      host: %s
      port: %d
      database: app
      admin: {username: keyturn_admin, password: "env:PW"}
%s`, id, host, port, extra)
}

func TestValidateRoleOverlap(t *testing.T) {
	type want struct {
		line    int
		field   string
		message []string // fragments
	}
	tests := map[string]struct {
		secrets []string
		want    []want
	}{
		"same group role, defaulted twins": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: orders\n"),
				pgSecret("b", "db.example.com", 5432, "      role: orders\n"),
			},
			want: []want{{18, "secrets[1].postgres.role", []string{`group role "orders" is also group role of secrets[0] (INV:10)`}},
				{18, "secrets[1].postgres.twins[0]", []string{`twin "orders_a" is also twin of secrets[0] (INV:10)`}},
				{18, "secrets[1].postgres.twins[1]", []string{`twin "orders_b" is also twin of secrets[0] (INV:10)`}}},
		},
		"twin of one is the login role of another": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: orders\n      twins: [orders_blue, orders_green]\n"),
				pgSecret("b", "db.example.com", 5432, "      role: orders_green\n      strategy: single\n"),
			},
			want: []want{{19, "secrets[1].postgres.role", []string{`login role "orders_green" is also twin of secrets[0] (INV:11)`}}},
		},
		"twin of one is the group role of another": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: reports\n"),
				pgSecret("b", "db.example.com", 5432, "      role: orders\n      twins: [reports, orders_b]\n"),
			},
			want: []want{{19, "secrets[1].postgres.twins[0]", []string{`twin "reports" is also group role of secrets[0] (INV:10)`}}},
		},
		"role of a later secret is an earlier one's admin": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: orders\n"),
				strings.Replace(pgSecret("b", "db.example.com", 5432, "      role: keyturn_admin\n      strategy: single\n"), "username: keyturn_admin", "username: other_admin", 1),
			},
			want: []want{{18, "secrets[1].postgres.role", []string{`login role "keyturn_admin" is also admin username of secrets[0] (INV:9)`}}},
		},
		"admin of a later secret is an earlier one's role": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: ops\n      strategy: single\n"),
				strings.Replace(pgSecret("b", "db.example.com", 5432, "      role: orders\n"), "username: keyturn_admin", "username: ops", 1),
			},
			want: []want{{18, "secrets[1].postgres.admin.username", []string{`admin username "ops" is also login role of secrets[0] (INV:10)`}}},
		},
		"localhost and 127.0.0.1 are one server": {
			secrets: []string{
				pgSecret("a", "localhost", 5432, "      role: orders\n      strategy: single\n"),
				pgSecret("b", "127.0.0.1", 5432, "      role: orders\n      strategy: single\n"),
			},
			want: []want{{19, "secrets[1].postgres.role", []string{`"orders" is also login role of secrets[0] (INV:10)`}}},
		},
		"host names differ only in case and a trailing dot": {
			secrets: []string{
				pgSecret("a", "DB.example.com", 5432, "      role: orders\n      strategy: single\n"),
				pgSecret("b", "db.example.com.", 5432, "      role: orders\n      strategy: single\n"),
			},
			want: []want{{19, "secrets[1].postgres.role", []string{`"orders" is also login role of secrets[0] (INV:10)`}}},
		},
		"same roles on another port": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: orders\n"),
				pgSecret("b", "db.example.com", 5433, "      role: orders\n"),
			},
		},
		"same roles on another host": {
			secrets: []string{
				pgSecret("a", "db1.example.com", 5432, "      role: orders\n"),
				pgSecret("b", "db2.example.com", 5432, "      role: orders\n"),
			},
		},
		"shared admin is fine": {
			secrets: []string{
				pgSecret("a", "db.example.com", 5432, "      role: orders\n"),
				pgSecret("b", "db.example.com", 5432, "      role: billing\n"),
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := writeTemp(t, "version: 1\nsecrets:\n"+strings.Join(tc.secrets, ""))
			_, err := Load(path)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			probs := problemsOf(t, err)
			if len(probs) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tc.want), err)
			}
			for i, w := range tc.want {
				p := probs[i]
				if p.Line != w.line || p.Field != w.field {
					t.Errorf("problem %d at line %d field %s, want line %d field %s: %s", i, p.Line, p.Field, w.line, w.field, p.Message)
				}
				for _, frag := range w.message {
					if frag = strings.ReplaceAll(frag, "INV", path); !strings.Contains(p.Message, frag) {
						t.Errorf("problem %d: %q lacks %q", i, p.Message, frag)
					}
				}
			}
		})
	}
}
