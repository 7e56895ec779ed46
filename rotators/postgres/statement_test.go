package postgres

import "testing"

func TestCountStatements(t *testing.T) {
	tests := map[string]struct {
		sql     string
		want    int
		invalid bool
	}{
		"one":                            {sql: "SELECT 1 FROM orders LIMIT 1", want: 1},
		"trailing semicolon":             {sql: "SELECT 1;", want: 1},
		"trailing semicolons and space":  {sql: "SELECT 1 ; ;\n  ", want: 1},
		"two":                            {sql: "SELECT 1; SELECT 2", want: 2},
		"commit then write":              {sql: "SELECT 1; COMMIT; INSERT INTO t VALUES (1)", want: 3},
		"semicolon in a string":          {sql: "SELECT 'a;b'", want: 1},
		"doubled quote in a string":      {sql: "SELECT 'it''s; fine'", want: 1},
		"backslash in a standard string": {sql: `SELECT 'a\'; SELECT 2`, want: 2},
		"escape string":                  {sql: `SELECT E'a\'; still the string'`, want: 1},
		"identifier ending in e":         {sql: `SELECT name'x'`, want: 1},
		"quoted identifier":              {sql: `SELECT 1 AS "a;b"`, want: 1},
		"doubled quote in identifier":    {sql: `SELECT 1 AS "a"";b"`, want: 1},
		"dollar quote":                   {sql: "SELECT $$a;b$$", want: 1},
		"tagged dollar quote":            {sql: "SELECT $fn$ $$; $fn$", want: 1},
		"parameter":                      {sql: "SELECT $1", invalid: true},
		"dollar inside an identifier":    {sql: "SELECT a$b; SELECT 2", want: 2},
		"line comment":                   {sql: "SELECT 1 -- ; not a statement\n", want: 1},
		"line comment at the end":        {sql: "SELECT 1 -- ;", want: 1},
		"block comment":                  {sql: "SELECT /* ; */ 1", want: 1},
		"nested block comment":           {sql: "SELECT /* /* ; */ ; */ 1", want: 1},
		"statement after a comment":      {sql: "SELECT 1; /* c */ DELETE FROM t", want: 2},
		"only comments":                  {sql: "-- nothing\n/* here */ ;", want: 0},
		"unterminated string":            {sql: "SELECT 'a; DROP TABLE t", invalid: true},
		"unterminated identifier":        {sql: `SELECT "a; DROP TABLE t`, invalid: true},
		"unterminated dollar quote":      {sql: "SELECT $x$ a; b", invalid: true},
		"unterminated comment":           {sql: "SELECT 1 /* ; DROP TABLE t", invalid: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := countStatements(tc.sql)
			if tc.invalid {
				if err == nil {
					t.Fatalf("countStatements(%q) = %d, want an error", tc.sql, got)
				}
				if CheckQueryProblem(tc.sql) == "" {
					t.Errorf("CheckQueryProblem(%q) found nothing wrong", tc.sql)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("countStatements(%q) = %d, %v; want %d", tc.sql, got, err, tc.want)
			}
			if msg := CheckQueryProblem(tc.sql); (msg == "") != (tc.want == 1) {
				t.Errorf("CheckQueryProblem(%q) = %q", tc.sql, msg)
			}
		})
	}
}
