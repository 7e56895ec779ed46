package mariadb

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/rotators"
)

func TestCheckQueryProblem(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT count(*) FROM shop.items":            "",
		"  with x as (select 1) select * from x ;  ": "",
		"(SELECT 1)":                      "",
		"SHOW GRANTS":                     "",
		"":                                "is empty",
		"TRUNCATE shop.items":             "must be a query that reads",
		"DROP TABLE shop.items":           "must be a query that reads",
		"SELECT 1; DROP TABLE shop.items": "more than one statement",
	} {
		got := CheckQueryProblem(q)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CheckQueryProblem(%q) = %q, want one saying %q", q, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Config{Host: "[::1]", Role: "shop", AdminUser: "keyturn"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	good.ApplyDefaults()
	if good.Host != "::1" {
		t.Errorf("Host = %q, want the brackets gone (the driver adds its own)", good.Host)
	}
	for name, c := range map[string]Config{
		"ddl check":       {Host: "h", Role: "shop", AdminUser: "keyturn", CheckQuery: "TRUNCATE shop.items"},
		"single sessions": {Host: "h", Strategy: StrategySingle, User: "shop", AdminUser: "keyturn", TerminateSessions: true},
		"admin is a twin": {Host: "h", Role: "shop", AdminUser: "shop_a"},
		"bad name":        {Host: "h", Role: "shop role", AdminUser: "keyturn"},
	} {
		if err := c.Validate(); !errors.Is(err, rotators.ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}
