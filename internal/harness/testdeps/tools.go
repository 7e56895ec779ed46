package testdeps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// rootModule is the module path that marks the repository root.
const rootModule = "github.com/keyturn/keyturn"

// ErrToolMissing reports that a test server's binary is not in bin/: `make tools` builds
// them from their own nested modules (tools/*).
var ErrToolMissing = errors.New("missing: run make tools")

// Tool returns the path of bin/<name> in the repository, or an error wrapping
// ErrToolMissing that names the path looked at.
func Tool(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", name)
	if info, err := os.Stat(bin); err != nil || info.IsDir() {
		return "", fmt.Errorf("bin/%s %w (looked for %s)", name, ErrToolMissing, bin)
	}
	return bin, nil
}

// RepoRoot walks up from the working directory to the directory whose go.mod declares
// the Keyturn module. Tests run in their package's directory, so it is always above.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if isRootModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod declaring module %s above the working directory", rootModule)
		}
		dir = parent
	}
}

// isRootModule reports whether the go.mod file at path declares the Keyturn module (and
// not a nested one such as tools/vaultdev).
func isRootModule(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == rootModule
		}
	}
	return false
}
