package pgsink

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
	"github.com/keyturn/keyturn/secret"
)

// The killed writer's environment: childEnv marks the child, the others say where it
// writes (the DSN goes through the environment, never the command line, where ps shows
// it).
const (
	childEnv       = "KEYTURN_PGSINK_TEST_CHILD"
	childDSNEnv    = "KEYTURN_PGSINK_TEST_DSN"
	childSchemaEnv = "KEYTURN_PGSINK_TEST_SCHEMA"
)

// killedEvents is how many events the child would append, were it not killed.
const (
	killedEvents = 600
	killedChains = 5
	killAfter    = 150 // acknowledged appends before the kill
)

func killedEvent(i int) audit.Record {
	id := secret.ID(fmt.Sprintf("svc-%d", i%killedChains))
	return audittest.Record(id, fmt.Sprintf("kill-%04d", i), time.Now())
}

// runChild appends killedEvents in order and prints "ok N" after each one is committed,
// until it is killed.
func runChild() int {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv(childDSNEnv), os.Getenv(childSchemaEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range killedEvents {
		if _, _, err := s.Append(ctx, killedEvent(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(w, "ok %d\n", i)
		_ = w.Flush()
	}
	return 0
}

// TestKilledWriter SIGKILLs a process in the middle of its appends: every chain must still
// verify (no gap, no partial record: the killed transaction rolled back, its chain lock
// went with it), everything it acknowledged must be stored, and appending all the events
// again must add only those it had not written.
func TestKilledWriter(t *testing.T) {
	schema := freshSchema(t)
	c := roles(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriter$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDSNEnv+"="+writerDSN(c), childSchemaEnv+"="+schema)
	cmd.Stderr = os.Stderr
	// The child must not outlive a test binary that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ok "))
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		acked[killedEvent(n).ID] = true
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the child ended before it was killed (%d acknowledged): %v", len(acked), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not ended by SIGKILL: %v", err)
	}

	s := openWriter(t, schema)
	ctx := t.Context()
	all, err := s.Records(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if rep := audit.Verify(all, nil, nil, nil); !rep.OK() {
		t.Fatalf("after the kill the chains do not verify: %v", rep.Problems)
	}
	stored := map[string]bool{}
	for _, r := range all {
		stored[r.ID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged event %s is not stored", id)
		}
	}
	// The child appends in order, so what it stored is a prefix; at most one more than it
	// acknowledged (committed, killed before it printed).
	for i := range len(stored) {
		if !stored[killedEvent(i).ID] {
			t.Errorf("stored events are not a prefix: %s missing", killedEvent(i).ID)
		}
	}
	if extra := len(stored) - len(acked); extra < 0 || extra > 1 {
		t.Errorf("%d stored, %d acknowledged: want at most one committed without acknowledgement", len(stored), len(acked))
	}

	// The re-append also shows the killed transaction's chain lock went with its
	// connection: every chain takes appends again.
	added := 0
	for i := range killedEvents {
		r, ok, err := s.Append(ctx, killedEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			added++
			if stored[r.ID] {
				t.Errorf("%s was stored by the child and appended again", r.ID)
			}
		} else if !stored[r.ID] {
			t.Errorf("%s reported stored but the child never stored it", r.ID)
		}
	}
	all, err = s.Records(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range all {
		ids[r.ID]++
	}
	dups := len(all) - len(ids)
	t.Logf("killed after %d acknowledged; %d stored by the child; re-append added %d; now %d records, %d distinct, %d duplicates",
		len(acked), len(stored), added, len(all), len(ids), dups)
	if added != killedEvents-len(stored) || len(ids) != killedEvents || dups != 0 {
		t.Fatalf("re-append added %d (want %d), %d distinct (want %d), %d duplicates (want 0)", added, killedEvents-len(stored), len(ids), killedEvents, dups)
	}
	if rep := audit.Verify(all, nil, nil, nil); !rep.OK() {
		t.Fatalf("after the re-append the chains do not verify: %v", rep.Problems)
	}
}
