package storetest

import (
	"maps"
	"slices"
	"sync"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// concurrentStagers is how many goroutines race to stage one token.
const concurrentStagers = 8

func stageCases() []testCase {
	return []testCase{
		{"then read pending gives the same material and metadata", func(f *fixture) {
			m := material("v1")
			meta := map[string]string{"role": "orders_app_blue", "access_key_id": "AKIAEXAMPLE"}
			staged := f.stage("v1", m, meta)
			if staged.SecretID != f.id || staged.Token != "v1" || staged.Number < 1 {
				f.t.Fatalf("StagePending gave %+v", staged)
			}
			if !slices.Equal(staged.Stages, []secret.Stage{secret.StagePending}) {
				f.t.Fatalf("StagePending gave stages %v, want [pending]", staged.Stages)
			}
			if staged.CreatedAt.IsZero() {
				f.t.Fatal("StagePending gave a zero CreatedAt")
			}
			for _, read := range []func() (secret.Version, secret.Material, error){
				func() (secret.Version, secret.Material, error) {
					return f.store.Read(f.ctx, f.id, secret.StagePending)
				},
				func() (secret.Version, secret.Material, error) {
					return f.store.ReadVersion(f.ctx, f.id, "v1")
				},
			} {
				v, got, err := read()
				if err != nil {
					f.t.Fatalf("read back: %v", err)
				}
				expectMaterial(f.t, got, m)
				if !maps.Equal(v.Metadata, meta) {
					f.t.Fatalf("metadata is %v, want %v", v.Metadata, meta)
				}
				if v.Token != staged.Token || v.Number != staged.Number || !v.CreatedAt.Equal(staged.CreatedAt) {
					f.t.Fatalf("read back %+v, staged %+v", v, staged)
				}
			}
		}},
		{"twice with one token keeps one version and the first material", func(f *fixture) {
			first := material("first")
			v1 := f.stage("v1", first, map[string]string{"try": "1"})
			v2 := f.stage("v1", material("retry"), map[string]string{"try": "2"})
			if v2.Token != v1.Token || v2.Number != v1.Number {
				f.t.Fatalf("second StagePending gave %+v, first gave %+v", v2, v1)
			}
			if n := len(f.list()); n != 1 {
				f.t.Fatalf("ListVersions has %d versions, want 1", n)
			}
			v, m := f.read(secret.StagePending)
			expectMaterial(f.t, m, first)
			if v.Metadata["try"] != "1" {
				f.t.Fatalf("metadata is %v, want the first attempt's", v.Metadata)
			}
		}},
		{"a new token supersedes the pending version", func(f *fixture) {
			f.stage("v1", material("v1"), nil)
			m2 := material("v2")
			f.stage("v2", m2, nil)
			f.expectStage(secret.StagePending, "v2", m2)
			f.expectStages(map[secret.VersionToken][]secret.Stage{"v2": {secret.StagePending}})
		}},
		{"a new token supersedes the pending version but not current", func(f *fixture) {
			m1 := material("v1")
			f.rotate("v1", m1)
			f.stage("v2", material("v2"), nil)
			m3 := material("v3")
			f.stage("v3", m3, nil)
			f.expectStage(secret.StageCurrent, "v1", m1)
			f.expectStage(secret.StagePending, "v3", m3)
			f.expectStages(map[secret.VersionToken][]secret.Stage{
				"v1": {secret.StageCurrent},
				"v3": {secret.StagePending},
			})
		}},
		{"of a promoted token returns it unchanged", func(f *fixture) {
			m1 := material("v1")
			f.rotate("v1", m1)
			m2 := material("v2")
			f.stage("v2", m2, nil)
			// A create retried after its rotation moved on must change nothing.
			v := f.stage("v1", material("late-retry"), nil)
			if !v.Has(secret.StageCurrent) {
				f.t.Fatalf("restaging the current token gave stages %v, want [current]", v.Stages)
			}
			f.expectStage(secret.StageCurrent, "v1", m1)
			f.expectStage(secret.StagePending, "v2", m2)
		}},
		{"of one token from 8 goroutines makes exactly one version", func(f *fixture) {
			var (
				wg       sync.WaitGroup
				mats     = make([]secret.Material, concurrentStagers)
				versions = make([]secret.Version, concurrentStagers)
				errs     = make([]error, concurrentStagers)
			)
			for i := range concurrentStagers {
				mats[i] = material("racer")
				wg.Go(func() {
					versions[i], errs[i] = f.store.StagePending(f.ctx, stores.StageRequest{
						SecretID: f.id, Token: "v1", Material: mats[i],
					})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					f.t.Fatalf("StagePending in goroutine %d: %v", i, err)
				}
				if versions[i].Number != versions[0].Number {
					f.t.Fatalf("goroutines got versions %d and %d", versions[0].Number, versions[i].Number)
				}
			}
			if n := len(f.list()); n != 1 {
				f.t.Fatalf("ListVersions has %d versions, want 1", n)
			}
			_, got := f.read(secret.StagePending)
			if !slices.ContainsFunc(mats, func(m secret.Material) bool { return maps.EqualFunc(got, m, secret.Sensitive.Equal) }) {
				f.t.Fatal("pending material is none of the staged ones")
			}
		}},
		{"numbers increase and are never reused", func(f *fixture) {
			var numbers []int
			numbers = append(numbers, f.stage("a", material("a"), nil).Number)
			numbers = append(numbers, f.stage("b", material("b"), nil).Number)
			if err := f.store.DiscardPending(f.ctx, f.id, "b"); err != nil {
				f.t.Fatalf("DiscardPending: %v", err)
			}
			numbers = append(numbers, f.rotate("c", material("c")).Number)
			numbers = append(numbers, f.rotate("d", material("d")).Number)
			numbers = append(numbers, f.stage("e", material("e"), nil).Number)
			for i := 1; i < len(numbers); i++ {
				if numbers[i] <= numbers[i-1] {
					f.t.Fatalf("version numbers %v do not increase", numbers)
				}
			}
			if numbers[0] < 1 {
				f.t.Fatalf("first version number is %d, want at least 1", numbers[0])
			}
		}},
		{"an invalid secret id is refused", func(f *fixture) {
			for _, id := range []secret.ID{"", "../escape", "prod/../../etc", "/abs", "Upper/Case", "a//b"} {
				_, err := f.store.StagePending(f.ctx, stores.StageRequest{SecretID: id, Token: "v1", Material: material("bad")})
				if err == nil {
					f.t.Fatalf("StagePending(%q) succeeded", id)
				}
				if _, _, err := f.store.Read(f.ctx, id, secret.StageCurrent); err == nil {
					f.t.Fatalf("Read(%q) succeeded", id)
				}
			}
		}},
	}
}
