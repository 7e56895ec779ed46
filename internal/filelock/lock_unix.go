//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

// Package filelock owns the cross-process lock that the files in Keyturn's state
// directory (the dev file store, the audit trail) are written under.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// maxLockWait caps the pause between attempts to take a busy lock.
const maxLockWait = 20 * time.Millisecond

// Lock takes an exclusive flock on path, creating the file if needed, and returns
// the function that releases it. flock locks belong to an open file description, so two
// writers in one process exclude each other just as a worker and a CLI process do. The
// lock is polled rather than awaited so a cancelled context stops the wait.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	wait := time.Millisecond
	for {
		unlock, ok, err := TryLock(path)
		if err != nil || ok {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, maxLockWait)
	}
}

// TryLock takes the lock on path if nobody holds it, without waiting: ok is false
// when another writer holds it.
func TryLock(path string) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	return func() {
		// Closing the file releases the lock too; unlocking first states intent.
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		_ = f.Close()
	}, true, nil
}
