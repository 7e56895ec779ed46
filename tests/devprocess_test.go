package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// devProcess is `keyturn dev` running in process for one test, as a user runs it in a
// terminal of its own.
type devProcess struct {
	// Out is everything dev printed (banner and logs).
	Out    *testenv.SyncBuffer
	cancel context.CancelFunc
	done   chan int
	code   int
	ended  bool
}

// startDev runs `keyturn dev ARGS --log-level warn` and returns once it says it is
// running; the test fails if it exits first. Stop is called when the test ends, if the
// test did not call it.
func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devProcess{Out: &testenv.SyncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		d.done <- cli.Execute(ctx, append(append([]string{"dev"}, args...), "--log-level", "warn"), strings.NewReader(""), d.Out, d.Out)
	}()
	t.Cleanup(func() { d.Stop(t) })
	waitFor(t, 90*time.Second, "keyturn dev to say it is running", func() bool {
		select {
		case code := <-d.done:
			d.ended, d.code = true, code
			t.Fatalf("keyturn dev exited %d early:\n%s", code, d.Out.String())
		default:
		}
		return strings.Contains(d.Out.String(), "Press Ctrl-C to stop.")
	})
	return d
}

// Stop is Ctrl-C: it ends dev and returns its exit code, failing the test if dev does not
// stop within 30 seconds.
func (d *devProcess) Stop(t *testing.T) int {
	t.Helper()
	if d.ended {
		return d.code
	}
	d.cancel()
	select {
	case d.code = <-d.done:
		d.ended = true
	case <-time.After(30 * time.Second):
		d.ended = true
		t.Error("keyturn dev did not stop within 30s of Ctrl-C")
	}
	return d.code
}
