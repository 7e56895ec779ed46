package pgxspans

import "testing"

// TestOperation: a span is named by the statement's leading keywords from a fixed list,
// and by nothing when the text starts with anything else.
func TestOperation(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT 1":                       "SELECT",
		"\n\t\tSELECT EXISTS (SELECT 1)": "SELECT",
		"begin":                          "BEGIN",
		"commit;":                        "COMMIT",
		`ALTER ROLE "app_a" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:x$y:z'`: "ALTER ROLE",
		`CREATE ROLE "app_b" WITH NOLOGIN INHERIT`:                          "CREATE ROLE",
		`CREATE UNIQUE INDEX i ON t (x)`:                                    "CREATE",
		`GRANT "app" TO "app_b"`:                                            "GRANT",
		"'secret' SELECT":                                                   "",
		"Canary-7f3b9e":                                                     "",
		"":                                                                  "",
		"/* SELECT */ SELECT 1":                                             "",
	} {
		if got := Operation(sql); got != want {
			t.Errorf("Operation(%q) = %q, want %q", sql, got, want)
		}
	}
}
