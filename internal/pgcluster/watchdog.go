package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// watchdog is a small shell process that stops the server and removes the cluster's
// directory when the process that started it goes away. A test that times out panics without
// running deferred calls or t.Cleanup, a killed `keyturn dev` runs none either, and a
// server left behind would hold memory and a port on a
// shared two-core machine until the next reboot.
//
// It learns that the test binary is gone from its standard input: the test binary holds the
// only write end of that pipe, and the kernel closes it however the process ends.
type watchdog struct {
	cmd  *exec.Cmd
	pipe *os.File
}

// watchdogScript waits for end of input, then stops the server and removes its files.
// Paths travel in the environment so that nothing needs shell quoting. An initdb or a
// pg_ctl start may still be running when the test binary dies, and may write files or
// start the server after the first attempt, so the script tries until the directory is
// gone (once it is, neither can recreate it).
const watchdogScript = `cat >/dev/null
for attempt in 1 2 3 4 5 6 7 8 9 10; do
	$PGCLUSTER_RUNAS "$PGCLUSTER_PGCTL" -D "$PGCLUSTER_ROOT/data" -m immediate stop >/dev/null 2>&1
	rm -rf -- "$PGCLUSTER_ROOT" >/dev/null 2>&1
	[ -e "$PGCLUSTER_ROOT" ] || break
	sleep 1
done`

func startWatchdog(c *Cluster) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: watchdog pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript)
	cmd.Dir = "/"
	cmd.Stdin = r
	cmd.Env = append(os.Environ(),
		"PGCLUSTER_RUNAS="+strings.Join(c.runAs, " "),
		"PGCLUSTER_PGCTL="+filepath.Join(c.binDir, "pg_ctl"),
		"PGCLUSTER_ROOT="+c.root,
	)
	// Its own process group, so the Ctrl-C that interrupts `go test` does not kill the
	// watchdog before it has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("pgcluster: start watchdog: %w", err)
	}
	return &watchdog{cmd: cmd, pipe: w}, nil
}

// fire makes the watchdog clean up now and waits for it to finish.
func (w *watchdog) fire() {
	w.pipe.Close()
	done := make(chan struct{})
	go func() {
		_ = w.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = w.cmd.Process.Kill()
	}
}
