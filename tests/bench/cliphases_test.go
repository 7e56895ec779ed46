package bench

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// cliLines notes when a CLI process printed each line, so the benchmark can say where
// the time before the incident's workflow went (loading the inventory, printing the
// plan, starting the workflow).
type cliLines struct {
	start time.Time
	mu    sync.Mutex
	out   strings.Builder
	at    []lineAt
}

type lineAt struct {
	line string
	at   time.Duration
}

// read copies r (the CLI's stdout and stderr) line by line until it ends.
func (c *cliLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		at := time.Since(c.start)
		c.mu.Lock()
		c.out.WriteString(sc.Text())
		c.out.WriteByte('\n')
		c.at = append(c.at, lineAt{sc.Text(), at})
		c.mu.Unlock()
	}
}

// first is when the first line starting with prefix was printed; false when none was.
func (c *cliLines) first(prefix string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.at {
		if strings.HasPrefix(l.line, prefix) {
			return l.at, true
		}
	}
	return 0, false
}

func (c *cliLines) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// writeCLIStart prints when the CLI printed its plan and said the incident started, and
// when the server recorded the workflow's start, in seconds after the command began.
func writeCLIStart(c *cliLines, id string, workflowStarted time.Duration) {
	fmt.Println("\nThe CLI (seconds after the command began):")
	if at, ok := c.first("incident " + id + ", mode"); ok {
		fmt.Printf("  %6.2f  printed its plan (the inventory loaded and the scope resolved)\n", at.Seconds())
	}
	fmt.Printf("  %6.2f  the incident's workflow started (its first task ran)\n", workflowStarted.Seconds())
	if at, ok := c.first("incident " + id + " started"); ok {
		fmt.Printf("  %6.2f  printed that the incident started\n", at.Seconds())
	}
}

// batchDoneLog matches the worker's log line for one ContainBatch (activities.ContainBatch).
var batchDoneLog = regexp.MustCompile(`msg="containment batch done".* secrets=(\d+) .*prepare=(\S+) revoke=(\S+) finish=(\S+)`)

// writeBatchPhases summarises the worker's "containment batch done" lines: how long the
// batches' three rounds took (read the versions, revoke, purge and record).
func writeBatchPhases(workerLog string) {
	var prepare, revoke, finish []time.Duration
	secrets := 0
	for _, m := range batchDoneLog.FindAllStringSubmatch(workerLog, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		secrets += n
		for i, d := range []*[]time.Duration{&prepare, &revoke, &finish} {
			if v, err := time.ParseDuration(m[2+i]); err == nil {
				*d = append(*d, v)
			}
		}
	}
	if len(prepare) == 0 {
		fmt.Println("\nThe worker logged no containment batch.")
		return
	}
	fmt.Printf("\nThe worker's %d containment batches (%d secrets), each round's p50 / max / sum:\n", len(prepare), secrets)
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"prepare (resolve, record the start, read the versions)", prepare}, {"revoke (one transaction per target)", revoke}, {"finish (purge, discard, record the end)", finish}} {
		slices.Sort(r.d)
		var sum time.Duration
		for _, d := range r.d {
			sum += d
		}
		fmt.Printf("  %-58s %7.3f s / %7.3f s / %8.2f s\n", r.name, r.d[len(r.d)/2].Seconds(), r.d[len(r.d)-1].Seconds(), sum.Seconds())
	}
}
