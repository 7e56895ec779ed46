// Package storetest is the conformance suite for stores.Store. Every implementation runs
// it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) stores.Store { return newTestStore(t) })
//	}
//
// The suite checks the semantics written in the stores.Store godoc, the ones rotations
// rely on when a step is retried or rolled back; it does not check how a store keeps its
// data.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// group is a set of cases about one method or concern, run as one level of subtests.
type group struct {
	name  string
	cases []testCase
}

// testCase is one conformance check. It gets a store of its own and a secret ID nobody
// else uses.
type testCase struct {
	name string
	run  func(f *fixture)
}

// Run runs the conformance suite against stores made by newStore. Each case calls
// newStore once and works on a fresh, randomly suffixed secret ID, so a store backed by a
// shared server (a Vault dev server, LocalStack) passes without cleanup between cases.
func Run(t *testing.T, newStore func(t *testing.T) stores.Store) {
	t.Helper()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					c.run(&fixture{
						t:     t,
						ctx:   t.Context(),
						store: newStore(t),
						id:    uniqueID(t, g.name, c.name),
					})
				})
			}
		})
	}
}

func groups() []group {
	return []group{
		{"StagePending", stageCases()},
		{"Read", readCases()},
		{"Promote", promoteCases()},
		{"DiscardPending", discardCases()},
		{"ListVersions", listCases()},
		{"Redaction", redactionCases()},
		{"Races", raceCases()},
	}
}

// fixture bundles what a case works with and wraps the calls it makes most, failing the
// test on an unexpected error.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store stores.Store
	id    secret.ID
}

func (f *fixture) stage(token secret.VersionToken, m secret.Material, metadata map[string]string) secret.Version {
	f.t.Helper()
	v, err := f.store.StagePending(f.ctx, stores.StageRequest{SecretID: f.id, Token: token, Material: m, Metadata: metadata})
	if err != nil {
		f.t.Fatalf("StagePending(%s): %v", token, err)
	}
	return v
}

func (f *fixture) promote(token secret.VersionToken) {
	f.t.Helper()
	if err := f.store.Promote(f.ctx, f.id, token); err != nil {
		f.t.Fatalf("Promote(%s): %v", token, err)
	}
}

// rotate stages and promotes one version, as a successful rotation does.
func (f *fixture) rotate(token secret.VersionToken, m secret.Material) secret.Version {
	f.t.Helper()
	v := f.stage(token, m, nil)
	f.promote(token)
	return v
}

func (f *fixture) read(stage secret.Stage) (secret.Version, secret.Material) {
	f.t.Helper()
	v, m, err := f.store.Read(f.ctx, f.id, stage)
	if err != nil {
		f.t.Fatalf("Read(%s): %v", stage, err)
	}
	return v, m
}

func (f *fixture) list() []secret.Version {
	f.t.Helper()
	vs, err := f.store.ListVersions(f.ctx, f.id)
	if err != nil {
		f.t.Fatalf("ListVersions: %v", err)
	}
	return vs
}

// expectStage checks that stage is held by token's version and that its material is m.
func (f *fixture) expectStage(stage secret.Stage, token secret.VersionToken, m secret.Material) {
	f.t.Helper()
	v, got := f.read(stage)
	if v.Token != token {
		f.t.Fatalf("Read(%s) gave version %s, want %s", stage, v.Token, token)
	}
	if !v.Has(stage) {
		f.t.Fatalf("Read(%s) gave a version with stages %v", stage, v.Stages)
	}
	expectMaterial(f.t, got, m)
}

// expectNoStage checks that no version holds stage.
func (f *fixture) expectNoStage(stage secret.Stage) {
	f.t.Helper()
	_, _, err := f.store.Read(f.ctx, f.id, stage)
	expectErr(f.t, err, stores.ErrNotFound, "Read(%s)", stage)
}

// stagesByToken maps every listed version to its stages, sorted, for comparisons.
func (f *fixture) stagesByToken() map[secret.VersionToken][]secret.Stage {
	f.t.Helper()
	out := map[secret.VersionToken][]secret.Stage{}
	for _, v := range f.list() {
		out[v.Token] = slices.Sorted(slices.Values(v.Stages))
	}
	return out
}

// expectStages checks the stages of the listed versions. A version the store still lists
// without a stage matches one absent from want: the interface allows either.
func (f *fixture) expectStages(want map[secret.VersionToken][]secret.Stage) {
	f.t.Helper()
	got := f.stagesByToken()
	for token, stages := range got {
		if len(stages) == 0 {
			delete(got, token)
		}
	}
	for token, stages := range want {
		want[token] = slices.Sorted(slices.Values(stages))
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		f.t.Fatalf("stages are %v, want %v", got, want)
	}
}

// material makes distinct material for one version, tagged so failures say which.
func material(tag string) secret.Material {
	return secret.Material{
		"password":    secret.NewSensitive("pw-" + tag + "-" + randomHex(8)),
		"private_key": secret.NewSensitive("key-" + tag + "-" + randomHex(8)),
	}
}

func expectMaterial(t *testing.T, got, want secret.Material) {
	t.Helper()
	if !maps.EqualFunc(got, want, secret.Sensitive.Equal) {
		// Field names only: the values are material, even in a test.
		t.Fatalf("material differs: got fields %v, want fields %v (or values differ)",
			slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

func expectErr(t *testing.T, err, target error, call string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(call, args...), err, target)
	}
}

// uniqueID makes a valid secret ID from the case's name plus a random suffix.
func uniqueID(t *testing.T, parts ...string) secret.ID {
	t.Helper()
	segs := make([]string, 0, len(parts)+1)
	segs = append(segs, "storetest")
	for _, p := range parts {
		segs = append(segs, slug(p))
	}
	segs[len(segs)-1] += "-" + randomHex(4)
	id := secret.ID(strings.Join(segs, "/"))
	if err := id.Validate(); err != nil {
		t.Fatalf("storetest made a bad id: %v", err)
	}
	return id
}

// slug turns a case name into an ID segment: lower case, runs of other characters
// become one '-', at most 60 characters so the whole ID stays under the 200 limit.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 60 {
		out = strings.Trim(out[:60], "-")
	}
	if out == "" {
		out = "case"
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
