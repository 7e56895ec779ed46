//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package filelock

import (
	"context"
	"errors"
)

// Lock refuses on platforms without flock: writing without a cross-process lock would
// let a worker and a CLI lose each other's writes silently.
func Lock(context.Context, string) (func(), error) {
	return nil, errors.New("lock: Keyturn's state files need flock, which this platform lacks")
}

// TryLock refuses for the same reason as Lock.
func TryLock(string) (func(), bool, error) {
	return nil, false, errors.New("lock: Keyturn's state files need flock, which this platform lacks")
}
