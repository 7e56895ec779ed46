// Package tests holds Keyturn's end-to-end tests: the keyturn CLI, a worker, the embedded
// Temporal server, a real PostgreSQL cluster with scram-sha-256 and the file store, all
// real. Fault-injection tests kill a worker process mid-rotation.
package tests

import (
	"context"
	"os"
	"testing"

	"github.com/keyturn/keyturn/internal/cli"
)

// TestMain lets the crash test re-run this test binary as a separate `keyturn worker`
// process (KEYTURN_TEST_AS_CLI=1), so it can be killed with SIGKILL mid-rotation without
// building a second binary.
//
// Every command a test runs without --home gets a state directory of its own, never the
// user's: a developer's running `keyturn dev` must not be found by the tests, nor the
// tests' state left in their home.
func TestMain(m *testing.M) {
	if os.Getenv("KEYTURN_TEST_AS_CLI") == "1" {
		os.Exit(cli.Execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(withOwnHome(m))
}

func withOwnHome(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keyturn-tests-home-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.Setenv("KEYTURN_HOME", dir)
	return m.Run()
}
