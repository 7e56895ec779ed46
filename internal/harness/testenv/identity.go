package testenv

import (
	"strconv"
	"strings"
)

// RanOn reports whether a Temporal worker identity (a task's LastWorkerIdentity, say) is
// that of the `keyturn worker` process pid: the CLI names its workers keyturn@host/pid
// (internal/cli workerIdentity), so tests that kill the process running a task find it.
func RanOn(identity string, pid int) bool {
	return strings.HasSuffix(identity, "/"+strconv.Itoa(pid))
}
