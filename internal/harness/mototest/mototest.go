// Package mototest runs moto's server, a local imitation of AWS, for tests of code that
// talks to AWS Secrets Manager (and the other services moto imitates).
//
// Each Server is one moto_server process on a free port of 127.0.0.1, in a process group
// of its own so that stopping it leaves nothing behind, and killed by the kernel if the
// test binary dies first. moto keeps all its state in memory: Reset clears it, and a
// Restart or Stop loses it.
//
// When moto_server is not on PATH, tests are skipped with a reason, unless the environment
// variable CI parses as true (strconv.ParseBool): there a missing moto is a broken runner
// and the tests fail.
package mototest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
	"github.com/keyturn/keyturn/internal/loopback"
)

// Binary is the program Start runs, looked up on PATH.
const Binary = "moto_server"

// Region is the region AWSConfig sets. moto accepts any region; tests only need one.
const Region = "us-east-1"

// Test credentials AWSConfig signs with. moto accepts any credentials unless told to
// enforce IAM.
const (
	AccessKeyID     = "AKIAMOTOTESTEXAMPLE"
	SecretAccessKey = "moto-test-secret-access-key"
)

// readyTimeout bounds the wait for a new moto_server to answer. It is ready in under a
// second on a warm machine; the margin is for a cold Python import on a busy runner.
const readyTimeout = 30 * time.Second

// startAttempts is how many ports Start tries: another process may take the free port
// between our probe and moto's bind.
const startAttempts = 3

// ErrUnavailable reports that moto_server is not installed on this machine.
var ErrUnavailable = errors.New("mototest: moto_server not found on PATH")

// Server is a running moto_server.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:<port>. It stays the same
	// across Restart.
	Endpoint string

	port   int
	binary string
	env    []string
	log    *syncBuffer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one moto_server process and the signal that it has exited.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Options adjust a server. The zero value is what Start uses.
type Options struct {
	// Env holds extra environment variables for moto_server, e.g.
	// {"INITIAL_NO_AUTH_ACTION_COUNT": "3"} to enforce IAM after three calls (see
	// CreateIAMUser). AWS_* variables of the test's own environment are never passed on.
	Env map[string]string
}

// Start starts a moto_server for one test and stops it when the test ends. It skips the
// test when moto_server is missing, except in CI, where it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := start(opts)
	if errors.Is(err, ErrUnavailable) && !testdeps.InCI() {
		t.Skipf("skipping: %v (install moto with its server extra; set CI=true to make this a failure)", err)
	}
	if err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto_server output (tail):\n%s", s.logTail())
		}
		s.Stop()
	})
	return s
}

// start looks up moto_server and starts it on a free port.
func start(opts Options) (*Server, error) {
	binary, err := exec.LookPath(Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var errs []error
	for range startAttempts {
		port, err := loopback.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			Endpoint: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			port:     port,
			binary:   binary,
			env:      serverEnv(opts.Env),
			log:      &syncBuffer{},
		}
		if err := s.launch(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s, nil
	}
	return nil, errors.Join(errs...)
}

// launch starts moto_server on s.port and waits until it answers. On failure nothing is
// left running.
func (s *Server) launch() error {
	cmd := exec.Command(s.binary, "-H", "127.0.0.1", "-p", strconv.Itoa(s.port))
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	cmd.Dir = os.TempDir()
	cmd.Env = s.env
	// Its own process group, so Stop reaches anything it forks; and SIGKILL from the
	// kernel if the test binary dies without cleanup (a test timeout panics past
	// t.Cleanup), so no server outlives its test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The pipes copying output must not hold Wait open after a kill.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mototest: run %s: %w", s.binary, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := s.waitReady(p); err != nil {
		p.kill()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls the server until it answers, it exits, or readyTimeout passes.
func (s *Server) waitReady(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/moto-api/data.json", nil)
		if err != nil {
			return fmt.Errorf("mototest: build readiness request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("mototest: moto_server on port %d exited before it answered:\n%s", s.port, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("mototest: moto_server on port %d did not answer within %s:\n%s", s.port, readyTimeout, s.logTail())
		case <-tick.C:
		}
	}
}

// Stop kills the server. moto keeps its state in memory, so everything stored is lost.
// Calls to the endpoint fail with "connection refused" until Restart. Safe to call more
// than once and on a stopped server.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Restart stops the server if it runs and starts a new one on the same port, so clients
// built from Endpoint or AWSConfig keep working. The new server starts empty: moto keeps
// its state only in memory, so every secret, user and key created before is gone.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		t.Fatalf("restart moto_server on %s: %v", s.Endpoint, err)
	}
}

// Reset clears all of moto's state (POST /moto-api/reset), as a fresh server would start.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		t.Fatalf("build moto reset request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}

// AWSConfig returns an AWS SDK configuration that talks to this server: region
// us-east-1, static test credentials and BaseEndpoint set to Endpoint. It is built
// directly rather than through config.LoadDefaultConfig so that nothing from the
// developer's environment (AWS_PROFILE, AWS_ENDPOINT_URL_*, shared files) can send a test
// to real AWS. ctx is accepted for symmetry with LoadDefaultConfig and is not used.
func (s *Server) AWSConfig(ctx context.Context) aws.Config {
	_ = ctx
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// Log returns what moto_server has printed so far: one line per request, and Python
// tracebacks when moto itself fails.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) logTail() string {
	out := s.log.String()
	if len(out) > 4000 {
		out = "..." + out[len(out)-4000:]
	}
	return out
}

// kill ends the process group and waits for the process to be reaped.
func (p *process) kill() {
	if pid := p.cmd.Process.Pid; pid > 0 {
		// The negative pid names the whole group; moto_server leads it (Setpgid).
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// serverEnv is the test's environment without AWS_* variables, plus extra. moto_server
// loads its service models through botocore, which reads AWS_*: an AWS_PROFILE naming a
// profile that does not exist makes every request fail inside moto.
func serverEnv(extra map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		out = append(out, k+"="+extra[k])
	}
	return out
}

// syncBuffer collects the server's output; the process writes it from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
