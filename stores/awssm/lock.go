package awssm

import (
	"context"
	"sync"
)

// keyedLock is a set of mutexes by key that a waiter can give up on when its context
// ends. Entries are freed when nobody holds or waits for them, so the set stays as small
// as the number of secrets being staged at the moment.
type keyedLock struct {
	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	// slot holds one token while the key is locked.
	slot chan struct{}
	// refs counts holders and waiters.
	refs int
}

// lock waits for key's lock and returns the function that releases it.
func (k *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.entries == nil {
		k.entries = map[string]*lockEntry{}
	}
	e := k.entries[key]
	if e == nil {
		e = &lockEntry{slot: make(chan struct{}, 1)}
		k.entries[key] = e
	}
	e.refs++
	k.mu.Unlock()

	select {
	case e.slot <- struct{}{}:
		return func() {
			<-e.slot
			k.release(key, e)
		}, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedLock) release(key string, e *lockEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(k.entries, key)
	}
}
