package inventory

import (
	"strings"
	"testing"
)

func TestLoadMariaDB(t *testing.T) {
	inv, err := Load("testdata/kinds.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	m := inv.Secrets[5].MariaDB
	if m == nil || m.Port != DefaultMariaDBPort || m.Strategy != StrategyAlternating || strings.Join(m.Twins, ",") != "orders_a,orders_b" ||
		m.HostPattern != "%" || m.TLS != "disable" || m.Admin.Password != "env:MARIADB_ADMIN" || m.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("mariadb block %+v", m)
	}
}

func TestMariaDBProblems(t *testing.T) {
	const text = `version: 1
secrets:
  - id: a/db
    kind: mariadb
    mariadb:
      host: db.internal
      tls: disable
      role: "app role"
      host_pattern: "10.%; DROP"
      admin: {username: keyturn, password: hunter2}
  - id: b/db
    kind: mariadb
    mariadb:
      host: "127.0.0.1:3306"
      strategy: single
      admin: {username: keyturn, password: env:X}
  - id: c/db
    kind: mariadb
    mariadb:
      host: localhost
      role: shop
      admin: {username: shop_a, password: env:X}
  - id: d/db
    kind: mariadb
    mariadb:
      host: 127.0.0.1
      role: orders
      admin: {username: keyturn, password: env:X}
      check_query: TRUNCATE orders.items
      connect_timeout: 500ms
  - id: e/db
    kind: mariadb
    mariadb:
      host: 127.0.0.1
      strategy: single
      user: orders_b
      tls: prefer
      admin: {username: keyturn, password: env:X}
`
	wantKindProblems(t, text, map[string]string{
		"secrets[0].mariadb.tls":             "unencrypted",
		"secrets[0].mariadb.role":            "letters, digits",
		"secrets[0].mariadb.host_pattern":    "holds a character",
		"secrets[0].mariadb.admin.password":  "",
		"secrets[1].mariadb.user":            "is empty",
		"secrets[1].mariadb.host":            "write the port in mariadb.port",
		"secrets[2].mariadb.admin.username":  "one of the accounts this secret rotates",
		"secrets[4].mariadb.user":            "also the managed account or role of secrets[3]",
		"secrets[4].mariadb.tls":             "unknown mode",
		"secrets[3].mariadb.check_query":     "must be a query that reads",
		"secrets[3].mariadb.connect_timeout": "between 1s",
	}, "hunter2", "DROP")
}
