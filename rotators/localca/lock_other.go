//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package localca

import (
	"context"
	"errors"
)

// lockFile is not available here: without flock, two writers could each add a serial
// and one would be lost from the CRL, so revocation refuses rather than risk that.
func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("localca: revoking needs flock, which this platform does not have")
}
