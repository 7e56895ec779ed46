// Package loopback picks free TCP ports on 127.0.0.1 for the servers Keyturn starts on
// this machine (the dev PostgreSQL cluster, the tests' servers).
package loopback

import (
	"fmt"
	"net"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1. Another process may take it
// before the caller binds it, so a caller that cannot bind port 0 itself tries again.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
