package pgtest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

// unavailable remembers why Main could not start the server, for Need to report.
var unavailable testdeps.Missing

// ForTest starts a cluster for one test and stops it when the test ends. It skips the test
// when the server binaries are missing, except in CI, where it fails it.
func ForTest(t testing.TB) *Cluster {
	t.Helper()
	return ForTestWith(t, Options{})
}

// ForTestWith is ForTest with options.
func ForTestWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(opts)
	if errors.Is(err, ErrUnavailable) && !testdeps.InCI() {
		t.Skipf("skipping: %v (set CI=true to make this a failure)", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL test cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL server log (tail):\n%s", c.LogTail())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop PostgreSQL test cluster: %v", err)
		}
	})
	return c
}

// Main runs a package's tests against one shared cluster. Call it from TestMain:
//
//	var cluster *pgtest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cluster, pgtest.Options{})) }
//
// and begin each test that needs the server with `c := pgtest.Need(t, cluster)`. When the
// server binaries are missing outside CI, *c stays nil and Need skips those tests; tests
// that do not need the server still run.
func Main(m *testing.M, c **Cluster, opts Options) int {
	cluster, err := Start(opts)
	switch {
	case errors.Is(err, ErrUnavailable) && !testdeps.InCI():
		unavailable.Record(err.Error())
		fmt.Fprintf(os.Stderr, "pgtest: tests that need PostgreSQL will be skipped: %v\n", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "pgtest: start PostgreSQL test cluster: %v\n", err)
		return 1
	}
	*c = cluster
	code := m.Run()
	if cluster != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL server log (tail):\n%s\n", cluster.LogTail())
		}
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	*c = nil
	return code
}

// Need returns the cluster Main started, or skips the test with the reason it is missing.
func Need(t testing.TB, c *Cluster) *Cluster {
	t.Helper()
	if c != nil {
		return c
	}
	unavailable.Skip(t, "pgtest")
	return nil
}
