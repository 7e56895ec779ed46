package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// syncBuffer is a log sink tests read while the agent writes.
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

func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "agent-canary-" + hex.EncodeToString(b)
}

// promote stages a version and promotes it, as a rotation's Create and Promote steps do.
func promote(t *testing.T, st stores.Store, id secret.ID, token, password string) {
	t.Helper()
	ctx := context.Background()
	_, err := st.StagePending(ctx, stores.StageRequest{
		SecretID: id, Token: secret.VersionToken(token),
		Material: secret.Material{"password": secret.NewSensitive(password)},
		Metadata: map[string]string{"username": "app"},
	})
	if err != nil {
		t.Fatalf("stage %s: %v", token, err)
	}
	if err := st.Promote(ctx, id, secret.VersionToken(token)); err != nil {
		t.Fatalf("promote %s: %v", token, err)
	}
}

// fixture is a real file store, a directory for the rendered files and an agent over a
// configuration written for them.
type fixture struct {
	storeDir, out string
	store         *file.Store
	logs          *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{storeDir: filepath.Join(dir, "store"), out: filepath.Join(dir, "out"), logs: &syncBuffer{}}
	if err := os.Mkdir(f.out, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := file.Open(f.storeDir)
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	return f
}

// agent parses body (with STORE and OUT replaced) and opens an agent on the store.
func (f *fixture) agent(t *testing.T, body string) *Agent {
	t.Helper()
	body = strings.NewReplacer("STORE", f.storeDir, "OUT", f.out).Replace(body)
	path := filepath.Join(filepath.Dir(f.out), "agent.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	a, err := New(cfg, src, slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func noMaterial(t *testing.T, where, text string, material ...string) {
	t.Helper()
	for _, m := range material {
		if strings.Contains(text, m) {
			t.Fatalf("%s holds secret material", where)
		}
	}
}

// TestRenderPromoteReload: files are rendered with their modes, a pass without a new
// version changes nothing, a promoted version is rendered and reloaded once for both
// files, a deleted file comes back, and a store outage leaves the files as they are.
func TestRenderPromoteReload(t *testing.T) {
	f := newFixture(t)
	const id = secret.ID("prod/app/db")
	first, second := canary(t), canary(t)
	promote(t, f.store, id, "v1", first)

	reloadLog := filepath.Join(f.out, "..", "reloads.log")
	script := filepath.Join(f.out, "..", "reload.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"reload $KEYTURN_CHANGED_SECRETS $(echo $KEYTURN_CHANGED_FILES | wc -w)\" >> "+reloadLog+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	a := f.agent(t, `
store: {type: file, dir: STORE}
poll: 1s
templates:
  - secret: prod/app/db
    destination: OUT/db.env
    format: env
  - secret: prod/app/db
    destination: OUT/db.conf
    mode: "0640"
    template: |
      user={{ meta "username" }} version={{ .Version }}
      password={{ field "password" }}
reload:
  command: [`+script+`]
  timeout: 10s
`)
	ctx := context.Background()
	env, conf := filepath.Join(f.out, "db.env"), filepath.Join(f.out, "db.conf")

	// 1. The first pass renders both files and reloads once.
	r := a.Pass(ctx)
	if len(r.Written) != 2 || r.Failed != 0 || r.ReloadErr != nil {
		t.Fatalf("first pass = %+v", r)
	}
	if got := readFile(t, env); got != "PASSWORD="+first+"\nUSERNAME=app\n" {
		t.Fatalf("db.env = %q", got)
	}
	if got := readFile(t, conf); got != "user=app version=1\npassword="+first+"\n" {
		t.Fatalf("db.conf = %q", got)
	}
	if mode(t, env) != 0o600 || mode(t, conf) != 0o640 {
		t.Fatalf("modes %o and %o, want 0600 and 0640", mode(t, env), mode(t, conf))
	}
	if got := lines(t, reloadLog); len(got) != 1 || got[0] != "reload prod/app/db 2" {
		t.Fatalf("reloads after the first pass = %q, want one naming the secret and its 2 files", got)
	}

	// 2. Nothing new: nothing written, no reload.
	if r := a.Pass(ctx); len(r.Written) != 0 || r.Failed != 0 {
		t.Fatalf("pass without a new version = %+v", r)
	}
	if got := lines(t, reloadLog); len(got) != 1 {
		t.Fatalf("a pass without a change reloaded: %q", got)
	}

	// 3. A new version is promoted: both files follow, one reload for the batch.
	promote(t, f.store, id, "v2", second)
	if r := a.Pass(ctx); len(r.Written) != 2 || r.ReloadErr != nil {
		t.Fatalf("pass after the promotion = %+v", r)
	}
	if got := readFile(t, conf); got != "user=app version=2\npassword="+second+"\n" {
		t.Fatalf("db.conf after the promotion = %q", got)
	}
	if got := lines(t, reloadLog); len(got) != 2 {
		t.Fatalf("reloads after the promotion = %q, want 2", got)
	}

	// 4. A deleted file is rendered again (and reloaded for).
	if err := os.Remove(env); err != nil {
		t.Fatal(err)
	}
	if r := a.Pass(ctx); len(r.Written) != 1 || r.Written[0] != env {
		t.Fatalf("pass after deleting db.env = %+v", r)
	}

	// 5. The store goes away: the files stay as they are, and the log says how stale.
	if err := os.RemoveAll(f.storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.storeDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = a.Pass(ctx)
	if r.Stale != 1 || len(r.Written) != 0 || r.Failed != 0 {
		t.Fatalf("pass with the store down = %+v, want one stale secret and nothing written", r)
	}
	if got := readFile(t, conf); !strings.Contains(got, second) {
		t.Fatal("db.conf lost its content while the store was down")
	}
	logs := f.logs.String()
	for _, want := range []string{"cannot read the store; files are kept at the last version read", "stale_for=", "version=2", "path=" + env, "msg=reloaded"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	t.Logf("agent log:\n%s", logs)
	noMaterial(t, "the agent's log", logs, first, second)
	// No temporary file is left beside the destinations.
	if tmps, _ := filepath.Glob(filepath.Join(f.out, ".*.tmp")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

// TestSignalReload sends a real SIGHUP to a real process named by its pid file, once per
// change.
func TestSignalReload(t *testing.T) {
	f := newFixture(t)
	const id = secret.ID("prod/app/tls")
	promote(t, f.store, id, "v1", canary(t))

	dir := filepath.Dir(f.out)
	pidFile, hups := filepath.Join(dir, "app.pid"), filepath.Join(dir, "hups.log")
	child := exec.Command("sh", "-c", `trap 'echo hup >> `+hups+`' HUP; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; while :; do sleep 0.05; done`)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitFor(t, "the child's pid file", func() bool { _, err := os.Stat(pidFile); return err == nil })

	a := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/tls, destination: OUT/pw, format: raw}
reload: {signal: SIGHUP, pid_file: `+pidFile+`}
`)
	if r := a.Pass(context.Background()); r.ReloadErr != nil || len(r.Written) != 1 {
		t.Fatalf("first pass = %+v", r)
	}
	waitFor(t, "the child to record one SIGHUP", func() bool { return len(lines(t, hups)) == 1 })
	promote(t, f.store, id, "v2", canary(t))
	if r := a.Pass(context.Background()); r.ReloadErr != nil || len(r.Written) != 1 {
		t.Fatalf("pass after the promotion = %+v", r)
	}
	waitFor(t, "the child to record a second SIGHUP", func() bool { return len(lines(t, hups)) == 2 })
	if !strings.Contains(f.logs.String(), "reload=\"SIGHUP to the pid in "+pidFile) {
		t.Fatalf("logs do not name the signal and pid file:\n%s", f.logs.String())
	}
}

// TestOnceReportsFailures: --once fails for a secret the store does not have and for a
// reload that fails; the reload's output is logged with the material scrubbed; a failed
// reload is not retried until the next change.
func TestOnceReportsFailures(t *testing.T) {
	f := newFixture(t)
	pw := canary(t)
	promote(t, f.store, "prod/app/db", "v1", pw)

	a := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/missing, destination: OUT/missing, format: raw}
`)
	err := a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 of 1 file(s) could not be rendered") {
		t.Fatalf("Once with a missing secret = %v", err)
	}
	if !strings.Contains(f.logs.String(), "the store has no current version of the secret") || !strings.Contains(f.logs.String(), "secret=prod/app/missing") {
		t.Fatalf("log does not say the secret is missing:\n%s", f.logs.String())
	}
	if _, err := os.Stat(filepath.Join(f.out, "missing")); !os.IsNotExist(err) {
		t.Fatalf("a file was written for a missing secret: %v", err)
	}

	// A reload that prints the secret and fails.
	b := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [sh, -c, 'cat OUT/pw; echo; echo broken >&2; exit 3']}
`)
	err = b.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("Once with a failing reload = %v", err)
	}
	noMaterial(t, "Once's error", err.Error(), pw)
	logs := f.logs.String()
	if !strings.Contains(logs, "reload failed; the files stay marked and it is tried again") || !strings.Contains(logs, "[REDACTED]") || !strings.Contains(logs, "broken") {
		t.Fatalf("log lacks the failed reload with its scrubbed output:\n%s", logs)
	}
	noMaterial(t, "the agent's log", logs, pw)
	if got := readFile(t, filepath.Join(f.out, "pw")); got != pw {
		t.Fatal("the file was not rendered before the failed reload")
	}
	// No change, but the reload is still pending: the next pass runs it again.
	if r := b.Pass(context.Background()); r.ReloadErr == nil || !r.ReloadPending || len(r.Written) != 0 {
		t.Fatalf("pass after a failed reload without a change = %+v, want the reload retried (and failing again)", r)
	}
}

// TestRestartKeepsFiles: an agent started over files it wrote before neither rewrites nor
// reloads, and clears temporary files a crash left.
func TestRestartKeepsFiles(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", canary(t))
	body := `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [sh, -c, 'echo x >> OUT/reloads']}
`
	if err := f.agent(t, body).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(f.out, ".pw.keyturn-123.tmp")
	if err := os.WriteFile(stray, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(filepath.Join(f.out, "pw"))
	if err := f.agent(t, body).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(filepath.Join(f.out, "pw"))
	if !os.SameFile(st1, st2) {
		t.Fatal("a restarted agent rewrote a file that was up to date")
	}
	if got := lines(t, filepath.Join(f.out, "reloads")); len(got) != 1 {
		t.Fatalf("reloads = %q, want 1 (none on the restart)", got)
	}
	if _, err := os.Lstat(pendingMarker(filepath.Join(f.out, "pw"))); !os.IsNotExist(err) {
		t.Fatalf("a reload-pending marker is left after a successful reload: %v", err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatal("a stray temporary file survived the start")
	}
}

// TestRunStopsOnCancel: Run polls until its context ends, then returns nil.
func TestRunStopsOnCancel(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", "first-value")
	a := f.agent(t, "store: {type: file, dir: STORE}\npoll: 1s\ntemplates: [{secret: prod/app/db, destination: OUT/pw, format: raw}]\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "the first render", func() bool { d, _ := os.ReadFile(filepath.Join(f.out, "pw")); return string(d) == "first-value" })
	promote(t, f.store, "prod/app/db", "v2", "second-value")
	waitFor(t, "the poll to render v2", func() bool { d, _ := os.ReadFile(filepath.Join(f.out, "pw")); return string(d) == "second-value" })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
