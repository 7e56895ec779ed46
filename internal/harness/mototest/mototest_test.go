package mototest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

func client(t *testing.T, s *Server) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(s.AWSConfig(t.Context()), func(o *secretsmanager.Options) {
		// A stopped server must fail the call at once, not after the SDK's backoff.
		o.RetryMaxAttempts = 1
	})
}

func createSecret(t *testing.T, c *secretsmanager.Client, name string) {
	t.Helper()
	_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(`{"k":"v"}`),
	})
	if err != nil {
		t.Fatalf("CreateSecret(%s): %v", name, err)
	}
}

func secretExists(t *testing.T, c *secretsmanager.Client, name string) bool {
	t.Helper()
	_, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil:
		return true
	case errors.As(err, &nf):
		return false
	default:
		t.Fatalf("DescribeSecret(%s): %v", name, err)
		return false
	}
}

func TestServerAnswersTheSDKAndResetClearsIt(t *testing.T) {
	s := Start(t)
	c := client(t, s)
	createSecret(t, c, "mototest/reset")
	if !secretExists(t, c, "mototest/reset") {
		t.Fatal("the secret just created is missing")
	}
	s.Reset(t)
	if secretExists(t, c, "mototest/reset") {
		t.Fatal("Reset kept the secret")
	}
}

func TestStopRefusesAndRestartAnswersOnTheSameEndpointEmpty(t *testing.T) {
	s := Start(t)
	endpoint := s.Endpoint
	c := client(t, s)
	createSecret(t, c, "mototest/restart")

	s.Stop()
	s.Stop() // twice is harmless
	_, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("mototest/restart")})
	if err == nil {
		t.Fatal("a stopped server answered")
	}

	s.Restart(t)
	if s.Endpoint != endpoint {
		t.Fatalf("endpoint moved from %s to %s", endpoint, s.Endpoint)
	}
	if secretExists(t, c, "mototest/restart") {
		t.Fatal("state survived a restart; the godoc says it is lost")
	}
	createSecret(t, c, "mototest/restart")
}

func TestStopLeavesNoProcess(t *testing.T) {
	s := Start(t)
	s.mu.Lock()
	pid := s.proc.cmd.Process.Pid
	s.mu.Unlock()
	s.Stop()
	// Signal 0 to the negative pid checks whether any process is left in moto's group.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d after Stop: %v, want ESRCH (no process left)", pid, err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint {
		t.Fatalf("both servers on %s", a.Endpoint)
	}
	createSecret(t, client(t, a), "mototest/only-in-a")
	if secretExists(t, client(t, b), "mototest/only-in-a") {
		t.Fatal("server b sees server a's secret")
	}
}

// recordingTB stands in for a test so the skip-or-fail decision can be observed: its
// Skipf and Fatalf end the goroutine as the real ones do.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper()        {}
func (r *recordingTB) Cleanup(func()) {}
func (r *recordingTB) Skipf(f string, a ...any) {
	r.skipped = true
	r.msg = f
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(f string, a ...any) {
	r.failed = true
	r.msg = f
	runtime.Goexit()
}

func runStart(tb *recordingTB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(tb)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
}

func TestMissingMotoSkipsOutsideCIAndFailsInCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv("CI", "false")
	outside := &recordingTB{TB: t}
	runStart(outside)
	if !outside.skipped || outside.failed {
		t.Fatalf("outside CI: skipped=%v failed=%v, want a skip", outside.skipped, outside.failed)
	}

	t.Setenv("CI", "true")
	inside := &recordingTB{TB: t}
	runStart(inside)
	if !inside.failed || inside.skipped {
		t.Fatalf("in CI: skipped=%v failed=%v, want a failure", inside.skipped, inside.failed)
	}

	t.Setenv("CI", "1") // strconv.ParseBool accepts it
	if !testdeps.InCI() {
		t.Fatal(`CI=1 is not treated as CI`)
	}
}

func TestAWSConfigIgnoresTheEnvironment(t *testing.T) {
	// A developer's environment must not redirect a test to real AWS.
	t.Setenv("AWS_ENDPOINT_URL", "https://secretsmanager.example.invalid")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://secretsmanager.example.invalid")
	t.Setenv("AWS_PROFILE", "does-not-exist")
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := secretsmanager.NewFromConfig(s.AWSConfig(ctx))
	if _, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatalf("ListSecrets through AWSConfig: %v", err)
	}
}

// TestServerDiesWithTheTestBinary runs a copy of this test binary that starts a server
// and exits without any cleanup, as a test that times out does, then checks that the
// kernel killed the server.
func TestServerDiesWithTheTestBinary(t *testing.T) {
	if os.Getenv("MOTOTEST_HELPER") == "1" {
		s := Start(t)
		s.mu.Lock()
		fmt.Printf("moto-pid=%d\n", s.proc.cmd.Process.Pid)
		s.mu.Unlock()
		os.Exit(0) // skips t.Cleanup on purpose
	}
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skip("moto_server not on PATH")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestServerDiesWithTheTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MOTOTEST_HELPER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var pid int
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "moto-pid="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatalf("helper printed no pid:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("moto_server %d outlived its test binary", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs: absent, or a zombie waiting for init.
func processGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func TestCreateIAMUserAndEnforcedPolicies(t *testing.T) {
	s := StartWith(t, Options{Env: map[string]string{"INITIAL_NO_AUTH_ACTION_COUNT": "3"}})
	creds := s.CreateIAMUser(t, "reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*"}]}`)
	cfg := s.AWSConfig(t.Context())
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	c := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
	if _, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatalf("an allowed call failed: %v", err)
	}
	_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("x"), SecretString: aws.String("{}")})
	if err == nil {
		t.Fatal("a call outside the user's policy succeeded")
	}
	t.Logf("refusal as the SDK reports it: %v", err)
}
