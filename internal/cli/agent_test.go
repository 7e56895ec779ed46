package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

func TestAgentCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(bad, "store: {type: file}\ntemplates:\n  - {secret: prod/x, destination: out.env, format: envfile}\n")
	good := filepath.Join(dir, "good.yaml")
	write(good, "store: {type: file, dir: "+filepath.Join(dir, "nostore")+"}\ntemplates:\n  - {secret: prod/x, destination: /tmp/x.env, format: env}\n")
	for name, tc := range map[string]struct {
		args []string
		code int
		want []string
	}{
		"no config":    {[]string{"agent"}, 1, []string{"no agent configuration: pass -c FILE"}},
		"bad config":   {[]string{"agent", "-c", bad}, 1, []string{"bad.yaml:1: store.dir: is required", "bad.yaml:3: templates[0].destination: must be an absolute path", "templates[0].format: unknown format"}},
		"check good":   {[]string{"agent", "-c", good, "--check"}, 0, []string{"good.yaml: 1 template(s), no problems"}},
		"no store":     {[]string{"agent", "-c", good, "--once"}, 1, []string{"open the file store", "no store key"}},
		"missing file": {[]string{"agent", "-c", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml", "pass the file with -c"}},
	} {
		t.Run(name, func(t *testing.T) {
			code, out := run(t, "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestAgentFollowsARealRotation runs the keyturn binary's agent over the file store that
// a real worker rotates a real PostgreSQL role into (embedded Temporal, scram-sha-256):
// the agent renders the credential (mode 0600), the credential in the file logs in, a
// second rotation is followed by a new file and a reload (a command, and in a second
// agent a SIGHUP to a real process), and SIGTERM stops the agents with status 0. Nothing the agent prints holds a password.
func TestAgentFollowsARealRotation(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	const id = secret.ID("e2e/app")
	rotate := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var out bytes.Buffer
		args := []string{"--address", env.Server.FrontendAddr(), "--namespace", env.Server.Namespace(), "-f", env.InventoryPath,
			"--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile, "rotate", string(id), "--wait"}
		if code := Execute(ctx, args, strings.NewReader(""), &out, &out); code != 0 {
			t.Fatalf("rotate exited %d:\n%s", code, out.String())
		}
	}
	rotate()
	bin := buildKeyturn(t)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	reloads := filepath.Join(dir, "reloads.log")
	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`# the agent of a service that is not written in Go
store:
  type: file
  dir: %s
poll: 1s
templates:
  - secret: e2e/app
    destination: %s/db.env
    format: env
    env_prefix: PG
  - secret: e2e/app
    destination: %s/dsn
    template: "host=%s port=%d dbname=demo user={{ meta \"role\" }} password={{ field \"password\" }}"
reload:
  command: [sh, -c, 'echo "$KEYTURN_CHANGED_SECRETS" >> %s']
  timeout: 10s
`, env.StoreDir, out, out, env.Cluster.Host, env.Cluster.Port, reloads)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, m1 := readCurrent(t, env, id)

	// --once renders and exits 0: an init container's run.
	once := exec.Command(bin, "agent", "-c", cfgPath, "--once")
	onceOut, err := once.CombinedOutput()
	if err != nil {
		t.Fatalf("agent --once: %v\n%s", err, scrubbed(string(onceOut), m1))
	}
	assertNoPassword(t, "agent --once's output", string(onceOut), m1)
	if got := readText(t, filepath.Join(out, "db.env")); !strings.Contains(got, "PGPASSWORD="+m1.Get("password").Reveal()+"\n") {
		t.Fatal("db.env does not hold the current password after --once")
	}

	// The daemon: started over the files --once wrote, it neither rewrites nor reloads.
	agent := startAgent(t, bin, cfgPath)
	logs := agent.logs
	waitUntil(t, "the agent's first pass", func() bool { return strings.Contains(logs.String(), "file is up to date") })

	// A second agent reloads a real process with SIGHUP, named by its pid file; the
	// process records each SIGHUP it gets.
	pidFile, hups := filepath.Join(dir, "app.pid"), filepath.Join(dir, "hups.log")
	app := exec.Command("sh", "-c", `trap 'echo hup >> `+hups+`' HUP; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; while :; do sleep 0.05; done`)
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Process.Kill(); app.Wait() })
	waitUntil(t, "the app's pid file", func() bool { return readText(t, pidFile) != "" })
	sigCfg := filepath.Join(dir, "agent-signal.yaml")
	pw := filepath.Join(out, "pw")
	if err := os.WriteFile(sigCfg, []byte(fmt.Sprintf("store: {type: file, dir: %s}\npoll: 1s\ntemplates:\n  - {secret: e2e/app, destination: %s, format: raw, fields: [password]}\nreload: {signal: SIGHUP, pid_file: %s}\n",
		env.StoreDir, pw, pidFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	sigAgent := startAgent(t, bin, sigCfg)
	waitUntil(t, "the app to record the first SIGHUP", func() bool { return len(readLines(t, hups)) == 1 })
	if readText(t, pw) != m1.Get("password").Reveal() {
		t.Fatal("the signal agent's file does not hold the current password")
	}
	if n := len(readLines(t, reloads)); n != 1 {
		t.Fatalf("reloads after --once and the daemon's start = %d, want 1 (--once's)", n)
	}

	// 1. The file holds a credential that works, mode 0600.
	dsn := filepath.Join(out, "dsn")
	if err := pgLogin(readText(t, dsn)); err != nil {
		t.Fatalf("the credential the agent rendered does not log in: %v", err)
	}
	if st, err := os.Stat(dsn); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dsn mode: %v %v, want 0600", st.Mode(), err)
	}

	// 2. A real rotation promotes version 2 and revokes version 1's twin: the agent
	// re-renders within a poll and reloads once for both files.
	rotate()
	v2, m2 := readCurrent(t, env, id)
	waitUntil(t, "the agent to render version 2", func() bool {
		return strings.Contains(readText(t, dsn), m2.Get("password").Reveal()) && len(readLines(t, reloads)) == 2
	})
	if err := pgLogin(readText(t, dsn)); err != nil {
		t.Fatalf("the rotated credential the agent rendered does not log in: %v", err)
	}
	waitUntil(t, "the app to record a second SIGHUP", func() bool {
		return readText(t, pw) == m2.Get("password").Reveal() && len(readLines(t, hups)) == 2
	})
	if got := readLines(t, reloads); got[1] != string(id) {
		t.Fatalf("the reload's KEYTURN_CHANGED_SECRETS = %q, want %s", got[1], id)
	}
	time.Sleep(1500 * time.Millisecond) // one more poll: no second reload for the same version
	if n := len(readLines(t, reloads)); n != 2 {
		t.Fatalf("reloads = %d after a quiet poll, want 2", n)
	}

	// 3. SIGTERM stops both with status 0.
	for _, a := range []*agentProcess{agent, sigAgent} {
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-a.exited:
			if err != nil {
				t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, scrubbed(a.logs.String(), m1, m2))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("agent did not stop within 20s of SIGTERM")
		}
	}
	assertNoPassword(t, "the signal agent's log", sigAgent.logs.String(), m1, m2)
	if !strings.Contains(sigAgent.logs.String(), `msg=reloaded reload="SIGHUP to the pid in `+pidFile) {
		t.Errorf("the signal agent's log does not report the SIGHUP:\n%s", sigAgent.logs.String())
	}
	text := logs.String()
	assertNoPassword(t, "the agent's log", text, m1, m2)
	for _, want := range []string{
		fmt.Sprintf("msg=rendered secret=e2e/app path=%s format=template mode=0600 version=%d", dsn, v2.Number),
		"msg=reloaded", "msg=\"agent stopping\"",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("agent log lacks %q:\n%s", want, text)
		}
	}
}

// agentProcess is `keyturn agent` running as its own process.
type agentProcess struct {
	cmd    *exec.Cmd
	logs   *testenv.SyncBuffer
	exited chan error
}

// startAgent starts the binary's agent on cfg at debug level; it is killed when the test
// ends if it is still running.
func startAgent(t *testing.T, bin, cfg string) *agentProcess {
	t.Helper()
	a := &agentProcess{logs: &testenv.SyncBuffer{}, exited: make(chan error, 1)}
	a.cmd = exec.Command(bin, "agent", "-c", cfg, "--log-level", "debug")
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() { a.cmd.Process.Kill() })
	return a
}

// buildKeyturn builds the keyturn binary, as operators run it; the build cache makes
// this a link step when the packages are built already.
func buildKeyturn(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if testdeps.InCI() {
			t.Fatalf("no go command to build the keyturn binary: %v", err)
		}
		t.Skipf("skipping: no go command to build the keyturn binary (set CI=true to make this a failure)")
	}
	bin := filepath.Join(t.TempDir(), "keyturn")
	start := time.Now()
	out, err := exec.Command(goTool, "build", "-buildvcs=false", "-o", bin, "github.com/keyturn/keyturn/cmd/keyturn").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/keyturn: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

func readCurrent(t *testing.T, env *testenv.Env, id secret.ID) (secret.Version, secret.Material) {
	t.Helper()
	v, m, err := env.Store.Read(context.Background(), id, secret.StageCurrent)
	if err != nil {
		t.Fatalf("read current %s: %v", id, err)
	}
	return v, m
}

// pgLogin logs in with a libpq keyword/value connection string, as a C or Python
// program would with the file.
func pgLogin(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn+" sslmode=disable")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func readText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(data)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	text := strings.TrimSpace(readText(t, path))
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

func assertNoPassword(t *testing.T, where, text string, ms ...secret.Material) {
	t.Helper()
	for _, m := range ms {
		for _, v := range m {
			if strings.Contains(text, v.Reveal()) {
				t.Fatalf("%s holds secret material", where)
			}
		}
	}
}

// scrubbed is text without the materials' values, safe to print in a failure.
func scrubbed(text string, ms ...secret.Material) string {
	for _, m := range ms {
		for _, v := range m {
			text = strings.ReplaceAll(text, v.Reveal(), "[REDACTED]")
		}
	}
	return text
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgentOnceRetriesAPendingReload is `keyturn agent --once` from cron over a real file
// store, each run a fresh agent: a failing reload makes the run exit 1; the next run
// finds the file up to date, retries the pending reload and exits 1 again while it
// fails; once it works the run exits 0; the run after that reloads nothing.
func TestAgentOnceRetriesAPendingReload(t *testing.T) {
	dir := t.TempDir()
	storeDir, out := filepath.Join(dir, "store"), filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := file.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pw := "cron-once-" + fmt.Sprint(time.Now().UnixNano())
	if _, err := st.StagePending(ctx, stores.StageRequest{SecretID: "prod/app/db", Token: "v1",
		Material: secret.Material{"password": secret.NewSensitive(pw)}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Promote(ctx, "prod/app/db", "v1"); err != nil {
		t.Fatal(err)
	}

	failFlag, reloads := filepath.Join(dir, "fail"), filepath.Join(dir, "reloads.log")
	script := filepath.Join(dir, "reload.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nif [ -e "+failFlag+" ]; then echo fail >> "+reloads+"; exit 4; fi\necho ok >> "+reloads+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(failFlag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("store: {type: file, dir: %s}\ntemplates:\n  - {secret: prod/app/db, destination: %s/pw, format: raw}\nreload: {command: [%s]}\n", storeDir, out, script)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 1, 0, 0} {
		if i == 2 {
			os.Remove(failFlag)
		}
		code, output := run(t, "", "agent", "-c", cfg, "--once")
		if code != want {
			t.Fatalf("run %d exited %d, want %d:\n%s", i+1, code, want, output)
		}
		if want == 1 && !strings.Contains(output, "exited with status 4") {
			t.Fatalf("run %d does not report the reload's failure:\n%s", i+1, output)
		}
		if strings.Contains(output, pw) {
			t.Fatalf("run %d's output holds the password", i+1)
		}
	}
	if got := strings.Join(readLines(t, reloads), ","); got != "fail,fail,ok" {
		t.Fatalf("reloads = %s, want fail,fail,ok", got)
	}
}
