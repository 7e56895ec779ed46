package redistest

import (
	"crypto/tls"
	"strconv"

	"github.com/keyturn/keyturn/internal/harness/testcerts"
)

// makeTLS writes a CA and a server certificate for 127.0.0.1 and localhost into the
// server's directory and makes it listen with TLS only, on port.
func (s *Server) makeTLS(port int) error {
	set, err := testcerts.New()
	if err != nil {
		return err
	}
	ca, cert, key, err := set.Write(s.Dir, -1, -1)
	if err != nil {
		return err
	}
	s.CAPEM = set.CAPEM
	// TLS only: the plain port is switched off.
	s.args[1] = "0"
	s.args = append(s.args, "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	s.tls = &tls.Config{RootCAs: set.Roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return nil
}
