package pgsink

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/internal/loopback"
)

// TestErrorsDoNotEchoTheDSN: whatever goes wrong with a connection string, the error (its
// message, and anything errors.As can reach) holds no password, while a server's SQLSTATE
// stays reachable.
func TestErrorsDoNotEchoTheDSN(t *testing.T) {
	c := roles(t)
	schema := freshSchema(t)
	const canary = "Canary-pw-7f3a9"
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		dsn      string
		wantCode string
	}{
		"wrong password":    {dsn: c.DSN(writerRole, canary, "postgres"), wantCode: "28P01"},
		"does not parse":    {dsn: "postgres://u:" + canary + "@127.0.0.1:notaport/db"},
		"keyword form":      {dsn: "host=127.0.0.1 user=u password=" + canary + " port=notaport"},
		"nobody listening":  {dsn: fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/db?sslmode=disable&connect_timeout=2", canary, port)},
		"no such database":  {dsn: c.DSN(writerRole, writerPassword, "nope"), wantCode: "3D000"},
		"schema not there":  {dsn: writerDSN(c)},
		"install, wrong pw": {dsn: c.DSN(ownerRole, canary, "postgres"), wantCode: "28P01"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			switch {
			case strings.HasPrefix(name, "install"):
				err = Install(t.Context(), tc.dsn, schema, writerRole)
			case name == "schema not there":
				_, err = Open(t.Context(), tc.dsn, "no_such_schema")
			default:
				_, err = Open(t.Context(), tc.dsn, schema)
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			for _, secret := range []string{canary, writerPassword, ownerPassword} {
				if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), secret) {
					t.Fatal("the error holds a password")
				}
			}
			var connErr *pgconn.ConnectError
			if errors.As(err, &connErr) {
				t.Error("the error still wraps the driver's ConnectError, which holds the password")
			}
			var parseErr *pgconn.ParseConfigError
			if errors.As(err, &parseErr) {
				t.Error("the error still wraps the driver's ParseConfigError, which holds the connection string")
			}
			if tc.wantCode != "" && sqlstate(err) != tc.wantCode {
				t.Errorf("SQLSTATE %q, want %s", sqlstate(err), tc.wantCode)
			}
			if name == "schema not there" && !errors.Is(err, errNotInstalled) {
				t.Errorf("want the not-installed error, got %v", err)
			}
		})
	}
}
