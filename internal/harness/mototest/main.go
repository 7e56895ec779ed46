package mototest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

// unavailable remembers why Main could not start the server, for Need to report.
var unavailable testdeps.Missing

// Main runs a package's tests against one shared server, which saves starting a Python
// process per test. Call it from TestMain:
//
//	var moto *mototest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mototest.Main(m, &moto)) }
//
// and begin each test that needs the server with `srv := mototest.Need(t, moto)`. When
// moto_server is missing outside CI, *s stays nil and Need skips those tests; tests that
// do not need the server still run. Tests sharing the server must not depend on it being
// empty: use unique names, or Reset it (which affects every test running at that moment).
func Main(m *testing.M, s **Server) int {
	srv, err := start(Options{})
	switch {
	case errors.Is(err, ErrUnavailable) && !testdeps.InCI():
		unavailable.Record(err.Error())
		fmt.Fprintf(os.Stderr, "mototest: tests that need moto will be skipped: %v\n", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "mototest: start moto_server: %v\n", err)
		return 1
	}
	*s = srv
	code := m.Run()
	if srv != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "mototest: moto_server output (tail):\n%s\n", srv.logTail())
		}
		srv.Stop()
	}
	*s = nil
	return code
}

// Need returns the server Main started, or skips the test with the reason it is missing.
func Need(t testing.TB, s *Server) *Server {
	t.Helper()
	if s != nil {
		return s
	}
	unavailable.Skip(t, "mototest")
	return nil
}
