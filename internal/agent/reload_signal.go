package agent

import (
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// signals are the signals a reload may send, by name: the ones services use to reload
// (HUP, USR1, USR2) or to restart under a supervisor (TERM, INT, QUIT).
var signals = map[string]syscall.Signal{
	"HUP":   syscall.SIGHUP,
	"USR1":  syscall.SIGUSR1,
	"USR2":  syscall.SIGUSR2,
	"TERM":  syscall.SIGTERM,
	"INT":   syscall.SIGINT,
	"QUIT":  syscall.SIGQUIT,
	"WINCH": syscall.SIGWINCH,
}

// parseSignal reads a signal name with or without SIG, in any case.
func parseSignal(name string) (syscall.Signal, bool) {
	s, ok := signals[strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")]
	return s, ok
}

func signalNames() []string {
	out := make([]string, 0, len(signals))
	for n := range signals {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// signalName is the name a log line gives a signal.
func signalName(s syscall.Signal) string {
	for n, v := range signals {
		if v == s {
			return "SIG" + n
		}
	}
	return fmt.Sprintf("signal %d", int(s))
}

// lookupUser resolves a user name or numeric uid.
func lookupUser(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, fmt.Errorf("no user %s", yamlfields.Quote(name))
	}
	return strconv.Atoi(u.Uid)
}

// lookupGroup resolves a group name or numeric gid.
func lookupGroup(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("no group %s", yamlfields.Quote(name))
	}
	return strconv.Atoi(g.Gid)
}
