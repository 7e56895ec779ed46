package cli

import (
	"fmt"
	"os"
)

// workerIdentity names this worker in the Web UI's activity details.
func workerIdentity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("keyturn@%s/%d", host, os.Getpid())
}
