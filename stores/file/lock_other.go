//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package file

import (
	"context"
	"errors"
)

// lockFile refuses on platforms without flock: writing without a cross-process lock
// would let a worker and a CLI lose each other's versions silently.
func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("lock store: the file store needs flock, which this platform lacks")
}

// tryLockFile refuses for the same reason as lockFile.
func tryLockFile(string) (func(), bool, error) {
	return nil, false, errors.New("lock store: the file store needs flock, which this platform lacks")
}
