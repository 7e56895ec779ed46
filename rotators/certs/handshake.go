package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// handshakeTimeout bounds the TLS check: both ends are in this process, so anything
// longer than this is a hang, not a slow network.
const handshakeTimeout = 10 * time.Second

// handshake serves the certificate and its chain on a fresh 127.0.0.1 listener and
// connects to it as a client that trusts only c.trusted and asks for serverName. It
// proves what the static checks cannot: that a real TLS stack accepts the pair, the
// chain as served, and the name. Nothing leaves the machine.
func handshake(ctx context.Context, c checked, serverName string) error {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	defer ln.Close()

	served := [][]byte{c.leaf.Raw}
	for _, ca := range c.chain {
		served = append(served, ca.Raw)
	}
	serverConfig := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: served, PrivateKey: c.key, Leaf: c.leaf}},
		MinVersion:   tls.VersionTLS12,
	}
	serverDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer conn.Close()
		serverDone <- tls.Server(conn, serverConfig).HandshakeContext(ctx)
	}()

	dialer := &tls.Dialer{Config: &tls.Config{
		RootCAs:    c.trusted, // only the CA: never the system roots
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
	}}
	conn, err := dialer.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		// Unblock the server side, which may still wait for a client that gave up.
		cancel()
		_ = ln.Close()
		<-serverDone
		return err
	}
	// The server finishes once it has read the client's Finished, which the client sent
	// before DialContext returned; closing first could cut that short.
	serverErr := <-serverDone
	_ = conn.Close()
	if serverErr != nil {
		return fmt.Errorf("server side: %w", serverErr)
	}
	return nil
}
