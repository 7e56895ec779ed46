package testdeps

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRootIsTheKeyturnModule(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
	if !isRootModule(filepath.Join(root, "go.mod")) {
		t.Fatalf("%s is not the Keyturn module root", root)
	}
	// The nested modules must not be mistaken for the root.
	for _, nested := range []string{"tools/vaultdev", "tools/temporalserver", "deploy/check"} {
		if isRootModule(filepath.Join(root, nested, "go.mod")) {
			t.Fatalf("%s/go.mod taken for the root module", nested)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "vaultdev", "go.mod")); err != nil {
		t.Fatalf("tools/vaultdev/go.mod: %v", err)
	}
}

func TestToolNamesWhatIsMissing(t *testing.T) {
	_, err := Tool("no-such-tool")
	if !errors.Is(err, ErrToolMissing) || err.Error() == "" {
		t.Fatalf("Tool of a missing binary: %v", err)
	}
}
