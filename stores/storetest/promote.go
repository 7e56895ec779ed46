package storetest

import (
	"maps"
	"slices"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func promoteCases() []testCase {
	return []testCase{
		{"moves pending to current and current to previous", func(f *fixture) {
			m1, m2, m3 := material("v1"), material("v2"), material("v3")

			f.rotate("v1", m1)
			f.expectStage(secret.StageCurrent, "v1", m1)
			f.expectNoStage(secret.StagePending)
			f.expectNoStage(secret.StagePrevious)

			f.rotate("v2", m2)
			f.expectStage(secret.StageCurrent, "v2", m2)
			f.expectStage(secret.StagePrevious, "v1", m1)

			// The version before previous drops out of the stages.
			f.rotate("v3", m3)
			f.expectStage(secret.StageCurrent, "v3", m3)
			f.expectStage(secret.StagePrevious, "v2", m2)
			f.expectNoStage(secret.StagePending)
			f.expectStages(map[secret.VersionToken][]secret.Stage{
				"v2": {secret.StagePrevious},
				"v3": {secret.StageCurrent},
			})
		}},
		{"twice is a no-op", func(f *fixture) {
			m1, m2 := material("v1"), material("v2")
			f.rotate("v1", m1)
			f.rotate("v2", m2)
			before := f.stagesByToken()
			f.promote("v2")
			if after := f.stagesByToken(); !maps.EqualFunc(before, after, slices.Equal) {
				f.t.Fatalf("second Promote changed stages from %v to %v", before, after)
			}
			f.expectStage(secret.StageCurrent, "v2", m2)
			f.expectStage(secret.StagePrevious, "v1", m1)
		}},
		{"an unknown token is not found", func(f *fixture) {
			err := f.store.Promote(f.ctx, f.id, "nope")
			expectErr(f.t, err, stores.ErrNotFound, "Promote on a new secret")
			m1 := material("v1")
			f.rotate("v1", m1)
			err = f.store.Promote(f.ctx, f.id, "nope")
			expectErr(f.t, err, stores.ErrNotFound, "Promote of an unknown token")
			f.expectStage(secret.StageCurrent, "v1", m1)
		}},
		{"of previous rolls back and the former current becomes previous", func(f *fixture) {
			m1, m2 := material("v1"), material("v2")
			f.rotate("v1", m1)
			f.rotate("v2", m2)
			f.promote("v1")
			f.expectStage(secret.StageCurrent, "v1", m1)
			f.expectStage(secret.StagePrevious, "v2", m2)
			f.expectStages(map[secret.VersionToken][]secret.Stage{
				"v1": {secret.StageCurrent},
				"v2": {secret.StagePrevious},
			})
		}},
		{"of pending without a current leaves no previous", func(f *fixture) {
			m1 := material("v1")
			f.stage("v1", m1, nil)
			f.promote("v1")
			f.expectStage(secret.StageCurrent, "v1", m1)
			f.expectNoStage(secret.StagePrevious)
			f.expectStages(map[secret.VersionToken][]secret.Stage{"v1": {secret.StageCurrent}})
		}},
	}
}

func discardCases() []testCase {
	return []testCase{
		{"then read pending is not found", func(f *fixture) {
			f.stage("v1", material("v1"), nil)
			if err := f.store.DiscardPending(f.ctx, f.id, "v1"); err != nil {
				f.t.Fatalf("DiscardPending: %v", err)
			}
			f.expectNoStage(secret.StagePending)
			_, _, err := f.store.ReadVersion(f.ctx, f.id, "v1")
			expectErr(f.t, err, stores.ErrNotFound, "ReadVersion of a discarded version")
		}},
		{"twice is nil", func(f *fixture) {
			f.stage("v1", material("v1"), nil)
			for i := range 2 {
				if err := f.store.DiscardPending(f.ctx, f.id, "v1"); err != nil {
					f.t.Fatalf("DiscardPending #%d: %v", i+1, err)
				}
			}
		}},
		{"an unknown token is nil", func(f *fixture) {
			if err := f.store.DiscardPending(f.ctx, f.id, "nope"); err != nil {
				f.t.Fatalf("DiscardPending on a new secret: %v", err)
			}
			m1 := material("v1")
			f.rotate("v1", m1)
			if err := f.store.DiscardPending(f.ctx, f.id, "nope"); err != nil {
				f.t.Fatalf("DiscardPending of an unknown token: %v", err)
			}
			f.expectStage(secret.StageCurrent, "v1", m1)
		}},
		{"after promote is refused and current stays readable", func(f *fixture) {
			m1 := material("v1")
			f.rotate("v1", m1)
			err := f.store.DiscardPending(f.ctx, f.id, "v1")
			expectErr(f.t, err, stores.ErrNotPending, "DiscardPending of the current version")
			f.expectStage(secret.StageCurrent, "v1", m1)
		}},
		{"of previous is refused and previous stays readable", func(f *fixture) {
			m1, m2 := material("v1"), material("v2")
			f.rotate("v1", m1)
			f.rotate("v2", m2)
			err := f.store.DiscardPending(f.ctx, f.id, "v1")
			expectErr(f.t, err, stores.ErrNotPending, "DiscardPending of the previous version")
			f.expectStage(secret.StagePrevious, "v1", m1)
			f.expectStage(secret.StageCurrent, "v2", m2)
		}},
		{"leaves current and previous alone", func(f *fixture) {
			m1, m2 := material("v1"), material("v2")
			f.rotate("v1", m1)
			f.rotate("v2", m2)
			f.stage("v3", material("v3"), nil)
			if err := f.store.DiscardPending(f.ctx, f.id, "v3"); err != nil {
				f.t.Fatalf("DiscardPending: %v", err)
			}
			f.expectStage(secret.StageCurrent, "v2", m2)
			f.expectStage(secret.StagePrevious, "v1", m1)
			f.expectNoStage(secret.StagePending)
		}},
	}
}
