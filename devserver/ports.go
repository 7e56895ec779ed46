package devserver

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// The server takes port numbers, not listeners, so a port has to be chosen,
// released and bound again by the server. freePort narrows the window in which
// another process could take it in between.

// freePort asks the kernel for an unused TCP port on host and returns it.
//
// Before releasing the port it makes one connection to it and closes the
// accepted side first. That leaves the port in TIME_WAIT for about a minute,
// during which Linux does not hand it out again to anyone binding port 0 (a
// parallel test's dev server, for one), while the server can still bind it
// explicitly because Go listeners set SO_REUSEADDR.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", hostPort(host, 0))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)

	client, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.ParseIP(dialHost(host)), Port: addr.Port})
	if err != nil {
		// The port is still free; it just lacks the TIME_WAIT guard.
		return addr.Port, nil
	}
	defer client.Close()
	if accepted, err := l.Accept(); err == nil {
		_ = accepted.Close()
	}
	return addr.Port, nil
}

// freePorts returns n distinct free ports on host.
func freePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	seen := make(map[int]bool, n)
	for len(ports) < n {
		p, err := freePort(host)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// checkBindable reports whether host:port can be listened on now, so that a
// taken port becomes an AddrInUseError instead of the server's own reaction
// to a failed bind, which is to log at Fatal level.
func checkBindable(host string, port int, flag string) error {
	addr := hostPort(host, port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &AddrInUseError{Addr: addr, Flag: flag}
		}
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l.Close()
}
