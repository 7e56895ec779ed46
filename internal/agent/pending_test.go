package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// flakyReload writes a real reload script that appends "ok" to a log and succeeds, or
// appends "fail" and exits 1 while the file fail exists. It also records the files it was
// told about.
func flakyReload(t *testing.T, f *fixture) (script, failFlag, log string) {
	t.Helper()
	dir := filepath.Dir(f.out)
	script, failFlag, log = filepath.Join(dir, "reload.sh"), filepath.Join(dir, "fail"), filepath.Join(dir, "reloads.log")
	body := "#!/bin/sh\nif [ -e " + failFlag + " ]; then echo fail >> " + log + "; exit 1; fi\n" +
		"echo \"ok $(echo $KEYTURN_CHANGED_FILES | wc -w)\" >> " + log + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script, failFlag, log
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func markerExists(dest string) bool {
	_, err := os.Lstat(pendingMarker(dest))
	return err == nil
}

// TestFailedReloadIsRetried: a reload that fails once is run again at the next poll,
// without a new version, and succeeds; the marker then goes and nothing more runs.
func TestFailedReloadIsRetried(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", canary(t))
	script, failFlag, log := flakyReload(t, f)
	touch(t, failFlag)
	a := f.agent(t, `
store: {type: file, dir: STORE}
poll: 1s
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [`+script+`]}
`)
	ctx := context.Background()
	dest := filepath.Join(f.out, "pw")
	r := a.Pass(ctx)
	if len(r.Written) != 1 || r.ReloadErr == nil || !r.ReloadPending {
		t.Fatalf("first pass = %+v, want the file written and the reload failed", r)
	}
	if !markerExists(dest) {
		t.Fatal("no reload-pending marker after a failed reload")
	}
	if err := os.Remove(failFlag); err != nil {
		t.Fatal(err)
	}
	r = a.Pass(ctx)
	if len(r.Written) != 0 || r.ReloadErr != nil || r.ReloadPending {
		t.Fatalf("second pass = %+v, want the pending reload retried and succeeding", r)
	}
	if got := lines(t, log); strings.Join(got, ";") != "fail;ok 1" {
		t.Fatalf("reloads = %q, want a failure then a success told of the 1 file", got)
	}
	if markerExists(dest) {
		t.Fatal("the marker survived a successful reload")
	}
	if r := a.Pass(ctx); r.ReloadErr != nil || r.ReloadPending || len(lines(t, log)) != 2 {
		t.Fatalf("third pass = %+v, reloads %q: want nothing run", r, lines(t, log))
	}
	if !strings.Contains(f.logs.String(), "reload pending from an earlier attempt; running it") {
		t.Fatalf("the log does not say the pending reload was retried:\n%s", f.logs.String())
	}
}

// TestFailingReloadBacksOff: a reload that keeps failing is tried at passes 1, 2, 4 and
// 8 (1, 2, 4 polls apart), and a new version runs it at once.
func TestFailingReloadBacksOff(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", canary(t))
	script, failFlag, log := flakyReload(t, f)
	touch(t, failFlag)
	a := f.agent(t, `
store: {type: file, dir: STORE}
poll: 1s
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [`+script+`]}
`)
	ctx := context.Background()
	var attempts []int
	for pass := 1; pass <= 8; pass++ {
		before := len(lines(t, log))
		r := a.Pass(ctx)
		if !r.ReloadPending {
			t.Fatalf("pass %d = %+v: the reload should still be pending", pass, r)
		}
		if len(lines(t, log)) > before {
			attempts = append(attempts, pass)
		}
	}
	if got := fmt.Sprint(attempts); got != "[1 2 4 8]" {
		t.Fatalf("attempts at passes %v, want 1,2,4,8", attempts)
	}
	// A new version is a new change: the reload runs at once, whatever the backoff.
	os.Remove(failFlag)
	promote(t, f.store, "prod/app/db", "v2", canary(t))
	if r := a.Pass(ctx); len(r.Written) != 1 || r.ReloadErr != nil || r.ReloadPending {
		t.Fatalf("pass after a new version = %+v", r)
	}
	// The wait between attempts is capped at maxReloadBackoff.
	a.cfg.Poll = 30 * time.Second
	var waits []int
	for n := 1; n <= 8; n++ {
		waits = append(waits, a.backoffPasses(n))
	}
	if got := fmt.Sprint(waits); got != "[0 1 3 7 9 9 9 9]" {
		t.Fatalf("passes skipped after 1..8 failures at poll 30s = %s, want [0 1 3 7 9 9 9 9] (at most 5m apart)", got)
	}
}

// TestRestartedAgentRunsAPendingReload: an agent stopped between writing a file and
// reloading (simulated: the file is written with its marker, as writeAtomic does before
// the rename, and no reload runs) leaves the reload to the next agent, which finds the
// file up to date and still reloads.
func TestRestartedAgentRunsAPendingReload(t *testing.T) {
	f := newFixture(t)
	pw := canary(t)
	promote(t, f.store, "prod/app/db", "v1", pw)
	script, _, log := flakyReload(t, f)
	dest := filepath.Join(f.out, "pw")
	if err := writeAtomic(dest, []byte(pw), 0o600, -1, -1, true); err != nil {
		t.Fatal(err)
	}
	a := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [`+script+`]}
`)
	st1, _ := os.Stat(dest)
	r := a.Pass(context.Background())
	if len(r.Written) != 0 || r.ReloadErr != nil || r.ReloadPending {
		t.Fatalf("pass of the new agent = %+v, want no write and a successful reload", r)
	}
	if st2, _ := os.Stat(dest); !os.SameFile(st1, st2) {
		t.Fatal("the new agent rewrote a file that was up to date")
	}
	if got := lines(t, log); strings.Join(got, ";") != "ok 1" {
		t.Fatalf("reloads = %q, want one, told of the file", got)
	}
	if markerExists(dest) {
		t.Fatal("the marker survived the reload")
	}
	if !strings.Contains(f.logs.String(), "msg=\"file is up to date\"") {
		t.Fatalf("log:\n%s", f.logs.String())
	}
}

// TestOnceRetriesAPendingReload is cron running --once: a failed reload fails the run;
// the next run finds the files up to date but the reload pending, runs it and fails
// again while it fails; then succeeds once; after that a run reloads nothing.
func TestOnceRetriesAPendingReload(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", canary(t))
	script, failFlag, log := flakyReload(t, f)
	touch(t, failFlag)
	body := `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [` + script + `]}
`
	ctx := context.Background()
	if err := f.agent(t, body).Once(ctx); err == nil || !strings.Contains(err.Error(), "exited with status 1") {
		t.Fatalf("first run = %v, want the reload's failure", err)
	}
	if err := f.agent(t, body).Once(ctx); err == nil || !strings.Contains(err.Error(), "exited with status 1") {
		t.Fatalf("second run, reload still failing = %v, want the failure again", err)
	}
	os.Remove(failFlag)
	if err := f.agent(t, body).Once(ctx); err != nil {
		t.Fatalf("third run, reload fixed = %v", err)
	}
	if err := f.agent(t, body).Once(ctx); err != nil {
		t.Fatalf("fourth run = %v", err)
	}
	if got := lines(t, log); strings.Join(got, ";") != "fail;fail;ok 1" {
		t.Fatalf("reloads = %q, want fail, fail, ok (and none on the fourth run)", got)
	}
}

// TestReloadEnvironmentHoldsNoCredentials runs a real command that prints its
// environment (from a child process): the store's credentials and Keyturn's settings are
// withheld, the rest and the batch are there.
func TestReloadEnvironmentHoldsNoCredentials(t *testing.T) {
	f := newFixture(t)
	promote(t, f.store, "prod/app/db", "v1", canary(t))
	creds := map[string]string{
		"VAULT_TOKEN": canary(t), "VAULT_ADDR": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": canary(t),
		"AWS_SECRET_ACCESS_KEY": canary(t), "AWS_SESSION_TOKEN": canary(t), "AWS_PROFILE": canary(t),
		"aws_secret_access_key": canary(t), "KEYTURN_AGENT_CONFIG": canary(t), "KEYTURN_VAULT_TOKEN": canary(t),
	}
	for k, v := range creds {
		t.Setenv(k, v)
	}
	t.Setenv("APP_SETTING", "kept")
	envOut := filepath.Join(filepath.Dir(f.out), "env.txt")
	a := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - {secret: prod/app/db, destination: OUT/pw, format: raw}
reload: {command: [sh, -c, 'env > `+envOut+`']}
`)
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := readFile(t, envOut)
	for k, v := range creds {
		if strings.Contains(env, k+"=") || strings.Contains(env, v) {
			t.Errorf("the reload command's environment holds %s", k)
		}
	}
	for _, want := range []string{"APP_SETTING=kept", "KEYTURN_CHANGED_FILES=" + filepath.Join(f.out, "pw"), "KEYTURN_CHANGED_SECRETS=prod/app/db", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("the reload command's environment lacks %q", want)
		}
	}
}

// TestReloadOutputScrubsWhatFilesHold: a reload command's output is scrubbed of the
// material the files hold even when this pass did not read it (a template that failed to
// render keeps the old value), of the version before, and of the forms the template
// functions write (base64, sh-quoted, JSON-escaped).
func TestReloadOutputScrubsWhatFilesHold(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stage := func(token string, m map[string]string) {
		t.Helper()
		mat := secret.Material{}
		for k, v := range m {
			mat[k] = secret.NewSensitive(v)
		}
		if _, err := f.store.StagePending(ctx, stores.StageRequest{SecretID: "prod/app/db", Token: secret.VersionToken(token), Material: mat}); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Promote(ctx, "prod/app/db", secret.VersionToken(token)); err != nil {
			t.Fatal(err)
		}
	}
	oldPW, oldKey, newPW := "old's-"+canary(t), "key-"+canary(t), "new-"+canary(t)
	stage("v1", map[string]string{"password": oldPW, "api_key": oldKey})
	dir := filepath.Dir(f.out)
	// The command prints every file the agent wrote and a copy of the version before,
	// then fails so its output is logged at error.
	a := f.agent(t, `
store: {type: file, dir: STORE}
templates:
  - secret: prod/app/db
    destination: OUT/pw.conf
    template: 'b64={{ field "password" | base64 }} sh={{ field "password" | sh }} json={{ field "password" | json }}'
  - secret: prod/app/db
    destination: OUT/key
    template: '{{ field "api_key" | base64 }}'
reload: {command: [sh, -c, 'cat OUT/pw.conf OUT/key `+dir+`/old.conf 2>/dev/null; exit 2']}
`)
	if r := a.Pass(ctx); len(r.Written) != 2 || r.ReloadErr == nil {
		t.Fatalf("first pass = %+v", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.conf"), []byte(readFile(t, filepath.Join(f.out, "pw.conf"))), 0o600); err != nil {
		t.Fatal(err)
	}
	// v2 has no api_key: OUT/key fails to render and keeps v1's key.
	stage("v2", map[string]string{"password": newPW})
	r := a.Pass(ctx)
	if len(r.Written) != 1 || r.Failed != 1 || r.ReloadErr == nil {
		t.Fatalf("pass after v2 = %+v, want one file written, one failed, the reload failed", r)
	}
	if got := readFile(t, filepath.Join(f.out, "key")); got != base64.StdEncoding.EncodeToString([]byte(oldKey)) {
		t.Fatal("the file that failed to render lost its content")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "b64=[REDACTED] sh=[REDACTED] json=\\\"[REDACTED]\\\"") {
		t.Fatalf("the reload's output is not in the log, scrubbed:\n%s", logs)
	}
	for _, v := range []string{oldPW, oldKey, newPW} {
		noMaterial(t, "the agent's log", logs, v, base64.StdEncoding.EncodeToString([]byte(v)), shQuote(v))
	}
	var re *ReloadError
	if !errors.As(r.ReloadErr, &re) {
		t.Fatalf("ReloadErr = %T", r.ReloadErr)
	}
	for _, v := range []string{oldPW, oldKey, newPW} {
		noMaterial(t, "the reload error's output", re.Output, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
}
