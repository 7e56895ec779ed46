package inventory

import (
	"strings"
	"testing"
)

func TestValidateCheckQuery(t *testing.T) {
	tests := map[string]struct {
		query string
		want  string // fragment of the problem; "" for none
	}{
		"one statement":          {`"SELECT 1 FROM orders LIMIT 1"`, ""},
		"trailing semicolon":     {`"SELECT 1;"`, ""},
		"semicolon in a string":  {`"SELECT count(*) FROM t WHERE note = 'a;b'"`, ""},
		"semicolon in a comment": {"\"SELECT 1 /* ; */ -- ;\\n\"", ""},
		"two statements":         {`"SELECT 1; SELECT 2"`, "holds 2 statements"},
		"commit and write":       {`"SELECT 1; COMMIT; INSERT INTO t VALUES (1)"`, "holds 3 statements"},
		"unterminated string":    {`"SELECT 'a; DELETE FROM t"`, "never closed"},
		"only a semicolon":       {`";"`, "holds no statement"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inv := "version: 1\nsecrets:\n" + pgSecret("a", "db.example.com", 5432, "      role: orders\n      check_query: "+tc.query+"\n")
			_, err := Load(writeTemp(t, inv))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			probs := problemsOf(t, err)
			if len(probs) != 1 || probs[0].Field != "secrets[0].postgres.check_query" || probs[0].Line != 11 || !strings.Contains(probs[0].Message, tc.want) {
				t.Fatalf("want one problem at line 11 on postgres.check_query containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestValidatePlaintext(t *testing.T) {
	tests := map[string]struct {
		host, extra string
		want        string // fragment of the one problem; "" for none
		field       string
	}{
		"disable to a remote host":        {"db.example.com", "      sslmode: disable\n", `"disable" to "db.example.com" would send the admin password`, "secrets[0].postgres.sslmode"},
		"disable to a remote address":     {"10.1.2.3", "      sslmode: disable\n", "allow_plaintext: true", "secrets[0].postgres.sslmode"},
		"disable allowed explicitly":      {"db.example.com", "      sslmode: disable\n      allow_plaintext: true\n", "", ""},
		"disable to localhost":            {"localhost", "      sslmode: disable\n", "", ""},
		"disable to 127.0.0.1":            {"127.0.0.1", "      sslmode: disable\n", "", ""},
		"disable to ::1":                  {"'::1'", "      sslmode: disable\n", "", ""},
		"allow_plaintext without disable": {"db.example.com", "      allow_plaintext: true\n", "only means something with sslmode", "secrets[0].postgres.allow_plaintext"},
		"verify-full with a root cert":    {"db.example.com", "      sslmode: verify-full\n      sslrootcert: /etc/ca.pem\n", "", ""},
		"default is require":              {"db.example.com", "", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inv := "version: 1\nsecrets:\n" + pgSecret("a", tc.host, 5432, "      role: orders\n"+tc.extra)
			got, err := Load(writeTemp(t, inv))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if tc.extra == "" && got.Secrets[0].Postgres.SSLMode != "require" {
					t.Errorf("default sslmode = %q, want require", got.Secrets[0].Postgres.SSLMode)
				}
				return
			}
			probs := problemsOf(t, err)
			if len(probs) != 1 || probs[0].Field != tc.field || !strings.Contains(probs[0].Message, tc.want) {
				t.Fatalf("want one problem on %s containing %q, got %v", tc.field, tc.want, err)
			}
		})
	}
}
