package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// maxReloadOutput is how much of a reload command's output is kept (its end) for the
// log line that reports a failure.
const maxReloadOutput = 8 << 10

// ReloadError is a reload that failed: the command's exit or the signal's error. Output
// is the end of what the command printed, with material scrubbed.
type ReloadError struct {
	What   string
	Err    error
	Output string
}

func (e *ReloadError) Error() string { return fmt.Sprintf("reload (%s): %v", e.What, e.Err) }
func (e *ReloadError) Unwrap() error { return e.Err }

// batch is what changed in one pass: the files written and their secrets, handed to a
// reload command in its environment.
type batch struct {
	files   []string
	secrets []string
}

// add puts t's file and secret in the batch, each once.
func (b *batch) add(t *Template) {
	if !yamlfields.Contains(b.files, t.Destination) {
		b.files = append(b.files, t.Destination)
	}
	if !yamlfields.Contains(b.secrets, string(t.Secret)) {
		b.secrets = append(b.secrets, string(t.Secret))
	}
}

// describe names the reload for logs: the program or the signal and its target.
func (r *Reload) describe() string {
	if len(r.Command) > 0 {
		return "command " + r.Command[0]
	}
	if r.PidFile != "" {
		return signalName(r.Signal) + " to the pid in " + r.PidFile
	}
	return signalName(r.Signal) + " to pid " + strconv.Itoa(r.Pid)
}

// run carries out the reload once.
func (r *Reload) run(ctx context.Context, b batch) (output string, err error) {
	if len(r.Command) > 0 {
		return r.runCommand(ctx, b)
	}
	return "", r.sendSignal()
}

// withheldEnvPrefixes are the environment variables a reload command does not inherit.
// They are where the agent's own store credentials come from: VAULT_TOKEN (and Vault's
// other settings), the AWS standard chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_*...), and
// Keyturn's own settings. The agent's token_file is a file, not the environment, and is
// not handed on either. A reload command that needs credentials of its own should get
// them its own way (a file it reads, its own profile), not borrow the agent's.
var withheldEnvPrefixes = []string{"VAULT_", "AWS_", "KEYTURN_"}

// reloadEnv is env without the withheld variables. Names are compared ignoring case, so
// aws_secret_access_key is withheld as well.
func reloadEnv(env []string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range withheldEnvPrefixes {
			if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// runCommand runs argv without a shell (no quoting or injection to get wrong) in a
// process group of its own, so a timeout ends the command and whatever it started. Its
// environment is the agent's without the store's credentials (reloadEnv), plus the batch.
func (r *Reload) runCommand(ctx context.Context, b batch) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Command[0], r.Command[1:]...)
	cmd.Env = append(reloadEnv(os.Environ()),
		"KEYTURN_CHANGED_FILES="+strings.Join(b.files, "\n"),
		"KEYTURN_CHANGED_SECRETS="+strings.Join(b.secrets, "\n"),
	)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), fmt.Errorf("timed out after %s and was killed; raise reload.timeout or make the command faster", r.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), fmt.Errorf("exited with status %d", exit.ExitCode())
	}
	return out.String(), err
}

// sendSignal signals the process, reading the pid file now: the process may have been
// restarted since the agent started.
func (r *Reload) sendSignal() error {
	pid := r.Pid
	if r.PidFile != "" {
		data, err := os.ReadFile(r.PidFile)
		if err != nil {
			return fmt.Errorf("read pid file: %w", err)
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("pid file %s does not hold a process ID", r.PidFile)
		}
	}
	if err := syscall.Kill(pid, r.Signal); err != nil {
		return fmt.Errorf("send %s to pid %d: %w", signalName(r.Signal), pid, err)
	}
	return nil
}

// tail keeps the last maxReloadOutput bytes written to it.
type tail struct{ b bytes.Buffer }

func (t *tail) Write(p []byte) (int, error) {
	t.b.Write(p)
	if over := t.b.Len() - maxReloadOutput; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string { return t.b.String() }
