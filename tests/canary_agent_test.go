package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// canaryAgent is `keyturn agent` run over the canary's file store: once (as an init
// container would) and as a daemon that follows the rotation. Its logs are output the
// canary scans; the files it renders hold material by design and are not scanned, but
// they must be 0600 and hold what the store holds, or the scan of its logs proves nothing
// about an agent that read the secret.
type canaryAgent struct {
	dir string
	// onceFile is what `--once` rendered (raw: the password alone), daemonFile what the
	// daemon keeps rendered (json).
	onceFile, daemonFile string
	onceOut              string

	stop    context.CancelFunc
	done    chan int
	daemonB syncBuffer
}

// startCanaryAgent renders id's password with `keyturn agent --once`, checks the file
// holds want with mode 0600, then starts the daemon (poll 1s, debug logs, a reload
// command) rendering id as JSON.
func startCanaryAgent(t *testing.T, env *testenv.Env, id secret.ID, want secret.Sensitive) *canaryAgent {
	t.Helper()
	a := &canaryAgent{dir: t.TempDir(), done: make(chan int, 1)}
	a.onceFile = filepath.Join(a.dir, "password")
	a.daemonFile = filepath.Join(a.dir, "app.json")
	onceCfg := filepath.Join(a.dir, "once.yaml")
	writeAgentConfig(t, onceCfg, fmt.Sprintf("store: {type: file, dir: %q}\ntemplates:\n  - secret: %s\n    destination: %q\n    format: raw\n    fields: [password]\n",
		env.StoreDir, id, a.onceFile))
	code, out := keyturn(t, env, "--log-level", "debug", "agent", "-c", onceCfg, "--once")
	a.onceOut = out
	if code != 0 {
		t.Fatalf("keyturn agent --once exited %d:\n%s", code, out)
	}
	a.wantFile(t, a.onceFile, func(data []byte) bool { return string(data) == want.Reveal() }, "the canary password exactly")

	daemonCfg := filepath.Join(a.dir, "daemon.yaml")
	writeAgentConfig(t, daemonCfg, fmt.Sprintf("store: {type: file, dir: %q}\npoll: 1s\ntemplates:\n  - secret: %s\n    destination: %q\n    format: json\nreload:\n  command: [/bin/sh, -c, 'echo reloaded $KEYTURN_CHANGED_SECRETS']\n",
		env.StoreDir, id, a.daemonFile))
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	args := []string{"--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(), "-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile,
		"--log-level", "debug", "agent", "-c", daemonCfg}
	go func() { a.done <- cli.Execute(ctx, args, strings.NewReader(""), &a.daemonB, &a.daemonB) }()
	t.Cleanup(func() { a.stop(); <-a.done })
	waitFor(t, 30*time.Second, "the agent daemon to render the canary", func() bool {
		data, err := os.ReadFile(a.daemonFile)
		return err == nil && bytes.Contains(data, []byte(want.Reveal()))
	})
	return a
}

// follow waits until the daemon's file holds want (the rotation's new password) and its
// reload ran, then stops the daemon and returns its logs.
func (a *canaryAgent) follow(t *testing.T, id secret.ID, want secret.Sensitive) string {
	t.Helper()
	// The reload command echoes the secrets it was told changed, and debug logs show it:
	// once for the first render, once for the new version.
	reloaded := "reloaded " + string(id)
	waitFor(t, 30*time.Second, "the agent daemon to render the new version and reload", func() bool {
		data, err := os.ReadFile(a.daemonFile)
		return err == nil && bytes.Contains(data, []byte(want.Reveal())) && strings.Count(a.daemonB.String(), reloaded) >= 2
	})
	a.wantFile(t, a.daemonFile, func(data []byte) bool { return bytes.Contains(data, []byte(want.Reveal())) }, "the new password")
	a.stop()
	if code := <-a.done; code != 0 {
		t.Fatalf("the agent daemon exited %d:\n%s", code, a.daemonB.String())
	}
	a.done <- 0 // for the cleanup
	return a.daemonB.String()
}

// wantFile fails unless path has mode 0600 and its content passes ok.
func (a *canaryAgent) wantFile(t *testing.T, path string, ok func([]byte) bool, what string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the agent rendered no %s: %v", filepath.Base(path), err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("the agent rendered %s with mode %#o, want 0600", filepath.Base(path), perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !ok(data) {
		// Not the content: it is material.
		t.Fatalf("the agent's %s does not hold %s: the scan of its logs would prove nothing", filepath.Base(path), what)
	}
}

func writeAgentConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer a running command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
