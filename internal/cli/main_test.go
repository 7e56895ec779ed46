package cli

import (
	"os"
	"testing"
)

// TestMain gives the commands these tests run a state directory of their own, never the
// user's: a developer's running `keyturn dev` must not be found by the tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyturn-cli-home-")
	if err != nil {
		panic(err)
	}
	os.Setenv("KEYTURN_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
