package storetest

import (
	"errors"
	"sync"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// raceCases check what happens when writers meet: two workers retrying one promote, or a
// stale rotation promoting after a newer one staged.
func raceCases() []testCase {
	return []testCase{
		{"two promotes of one pending version: one change, a clean loser", func(f *fixture) {
			old := material("old")
			f.rotate("race-1", old)
			next := material("next")
			f.stage("race-2", next, nil)

			const writers = 2
			var wg sync.WaitGroup
			errs := make([]error, writers)
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					errs[i] = f.store.Promote(f.ctx, f.id, "race-2")
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, stores.ErrConflict):
					// The clean loser: it saw the other writer's change and says so.
				default:
					f.t.Fatalf("promote %d: %v; want nil or an error wrapping ErrConflict", i, err)
				}
			}
			if wins == 0 {
				f.t.Fatal("no promote succeeded")
			}
			// Promoted once: previous is the old current, not the new version itself.
			f.expectStage(secret.StageCurrent, "race-2", next)
			f.expectStage(secret.StagePrevious, "race-1", old)
			f.expectNoStage(secret.StagePending)
			f.expectStages(map[secret.VersionToken][]secret.Stage{
				"race-1": {secret.StagePrevious},
				"race-2": {secret.StageCurrent},
			})
		}},
		{"a superseded pending version cannot be promoted", func(f *fixture) {
			cur := material("current")
			f.rotate("stale-1", cur)
			f.stage("stale-2", material("stale"), nil)
			newer := material("newer")
			f.stage("stale-3", newer, nil)
			err := f.store.Promote(f.ctx, f.id, "stale-2")
			if err == nil {
				f.t.Fatal("promote of a superseded pending version succeeded")
			}
			if !errors.Is(err, stores.ErrNotFound) && !errors.Is(err, stores.ErrNotPending) && !errors.Is(err, stores.ErrConflict) {
				f.t.Fatalf("promote of a superseded version: %v; want ErrNotFound, ErrNotPending or ErrConflict", err)
			}
			f.expectStage(secret.StageCurrent, "stale-1", cur)
			f.expectStage(secret.StagePending, "stale-3", newer)
		}},
	}
}
