package tests

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProductionBuild builds keyturn as deploy/Dockerfile and `make build-prod` do (-tags
// nodev, without the embedded Temporal server and Web UI) and checks that it is a whole
// CLI: the worker and the other commands are there, and `keyturn dev` says plainly that
// this build leaves it out and how to get it, with exit code 1.
func TestProductionBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "keyturn")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-tags", "nodev", "-o", bin, "github.com/keyturn/keyturn/cmd/keyturn").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodev: %v\n%s", err, out)
	}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		default:
			t.Fatalf("keyturn %s: %v", strings.Join(args, " "), err)
			return "", -1
		}
	}
	out, code := run("dev")
	if code != 1 || !strings.Contains(out, "`keyturn dev` is not in this build") || !strings.Contains(out, "make build") {
		t.Errorf("keyturn dev in the production build: exit %d\n%s", code, out)
	}
	out, code = run("--help")
	if code != 0 || strings.Contains(out, "\n  dev ") || !strings.Contains(out, "worker") || !strings.Contains(out, "incident") {
		t.Errorf("keyturn --help in the production build: exit %d\n%s", code, out)
	}
	if out, code = run("worker", "--help"); code != 0 {
		t.Errorf("keyturn worker --help in the production build: exit %d\n%s", code, out)
	}
}
