//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package localca

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Polling bounds for a lock another writer holds. Writers hold it for one CRL signature
// and one file write, a few milliseconds.
const (
	lockFirstPoll = 2 * time.Millisecond
	lockMaxPoll   = 50 * time.Millisecond
)

// lockFile takes an exclusive flock on path, creating the file if needed, and returns
// the function that releases it. flock belongs to the open file, so two goroutines of one
// process exclude each other as two processes do. It polls rather than blocks so that a
// cancelled context ends the wait. The lock file is never removed: removing it would let
// a waiter lock a file nobody else opens any more.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	fd := int(f.Fd())
	poll := lockFirstPoll
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for the lock on %s: %w", path, ctx.Err())
		case <-time.After(poll):
		}
		poll = min(2*poll, lockMaxPoll)
	}
}
