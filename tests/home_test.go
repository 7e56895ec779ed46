package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// TestDevRefusesABadInventoryBeforeWritingState: `keyturn dev -f bad.yaml` reports the
// problem with its line and leaves no state directory behind.
func TestDevRefusesABadInventoryBeforeWritingState(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nsecrets:\n  - id: Not A Valid Id\n    kind: postgres\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "state")
	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"dev", "-f", bad, "--home", home, "--no-ui"}, strings.NewReader(""), &out, &out)
	if code == 0 || !strings.Contains(out.String(), "bad.yaml:3") {
		t.Fatalf("dev with a bad inventory must fail naming the line; exit %d:\n%s", code, out.String())
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("dev with a bad inventory must write no state, but %s exists (%v)", home, err)
	}
}

// TestPayloadsNeedTheirKey: a command without the codec key (run with an empty state
// directory, as from another machine or directory) says which key the payloads need and
// how to pass it, instead of the SDK's "payload encoding is not supported".
func TestPayloadsNeedTheirKey(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	if code, out := keyturn(t, env, "rotate", "e2e/app", "--wait"); code != 0 {
		t.Fatalf("rotate exited %d:\n%s", code, out)
	}
	keys, err := codec.LoadKeyFile(env.CodecKeyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	want := codec.KeyID(keys[0])
	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"status", "e2e/app", "--home", t.TempDir(),
		"--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace()}, strings.NewReader(""), &out, &out)
	if code == 0 || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "--codec-key-file") || strings.Contains(out.String(), "not supported") {
		t.Fatalf("status without the key must name key %s and how to pass it; exit %d:\n%s", want, code, out.String())
	}
}
