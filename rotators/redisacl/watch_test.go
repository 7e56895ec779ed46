package redisacl

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/harness/redistest"
)

// watch records what a node shows of the commands it runs: its MONITOR stream (read on a
// raw connection, as redis-cli monitor does) and its slow log, set to keep every command.
type watch struct {
	s     *redistest.Server
	conn  net.Conn
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startWatch(t *testing.T, s *redistest.Server) *watch {
	t.Helper()
	c := s.Super()
	defer c.Close()
	for _, kv := range [][2]string{{"slowlog-log-slower-than", "0"}, {"slowlog-max-len", "100000"}} {
		if err := c.ConfigSet(t.Context(), kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Do(t.Context(), "SLOWLOG", "RESET").Err(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	w := &watch{s: s, conn: conn, done: make(chan struct{})}
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	if first, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(first, "+OK") {
		t.Fatalf("MONITOR on %s: %q %v", s.Addr, first, err)
	}
	go func() {
		defer close(w.done)
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
				w.mu.Lock()
				w.lines = append(w.lines, line)
				w.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close() })
	return w
}

// wantNone stops the watch and fails t if any of the values shows in MONITOR or the
// slow log. It also fails when the watch saw nothing of a rotation, which would make the
// check empty.
func (w *watch) wantNone(t *testing.T, values []string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // let the last commands reach the stream
	_ = w.conn.Close()
	<-w.done
	w.mu.Lock()
	monitor := strings.Join(w.lines, "")
	w.mu.Unlock()

	c := w.s.Super()
	defer c.Close()
	entries, err := c.SlowLogGet(context.Background(), -1).Result()
	if err != nil {
		t.Fatalf("SLOWLOG GET on %s: %v", w.s.Addr, err)
	}
	var slow strings.Builder
	for _, e := range entries {
		fmt.Fprintln(&slow, strings.Join(e.Args, " "))
	}
	// Redis 7 leaves ACL commands out of MONITOR, and shows the logins (Test's) there;
	// the slow log shows both. Each must show what it can of the rotation, or the check
	// below proves nothing.
	for _, c := range []struct{ name, text, want string }{
		{"MONITOR", monitor, `"auth"`}, {"slow log", slow.String(), "ACL SETUSER"}, {"slow log", slow.String(), "auth"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s of %s shows no %s: the watch saw nothing of the rotation", c.name, w.s.Addr, c.want)
		}
	}
	for name, text := range map[string]string{"MONITOR": monitor, "slow log": slow.String()} {
		if hasAny(text, values) {
			t.Errorf("%s of %s holds a password in plain text", name, w.s.Addr)
		}
	}
	t.Logf("%s: MONITOR %d lines, slow log %d entries, no password in either", w.s.Addr, len(w.lines), len(entries))
}
