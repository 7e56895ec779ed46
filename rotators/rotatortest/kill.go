package rotatortest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// KillHarness adapts a minting kind to RunKills.
type KillHarness struct {
	// New returns a rotator for a target of its own. Every call the rotator makes to the
	// target must pass through point: point(name) before the request leaves and again
	// once the answer has arrived, before the rotator sees it. point may not return: it
	// then ends the calling goroutine on the spot (runtime.Goexit), which is what a worker
	// killed at that instant does to the step. Unlike a real kill, Goexit still runs the
	// deferred calls on the way out (today only unlocks and closes), so a kill test cannot
	// catch code that relies on a defer for correctness; the SIGKILL tests in tests/ can.
	New func(t *testing.T, point func(name string)) rotators.Rotator
	// Live returns the handles of every credential that exists on the target and is not
	// revoked (an inactive IAM key counts: it can be reactivated), found by inspecting the
	// target directly, not through the rotator.
	Live func(t *testing.T) []string
	// Handle returns a version's handle as Live names it.
	Handle func(v secret.Version) string
	// Kills is how many Create attempts to kill. Defaults to 20.
	Kills int
}

// KillReport is what RunKills saw: how many Create attempts it killed, and for each
// rotation with a kill, how many credentials the target held right after the last kill
// and after the rotation finished.
type KillReport struct {
	// Rotations is how many rotations ran, with kills or without.
	Rotations  int
	Kills      int
	AfterKill  []int
	AfterRetry []int
}

// RunKills rotates one secret of h's target, over a file store, until h.Kills attempts of
// Create have been killed, and every point at least once, at random points: between any two calls Create makes to the
// target or the store, or inside the rotator between a call to the target and its
// answer. The first kill of each rotation takes those points in a random order, each
// once before any twice; a killed attempt is followed by a fresh Create for the same token, as
// Temporal's retry would run it on another worker, with no heartbeat hint (Abandoned is
// empty: the killed worker may never have sent one), only what the store knows and the
// rotation's start. Up to three attempts of one rotation may be killed in a row. Each
// rotation then tests, promotes, revokes the previous version and purges it, and the
// target must hold exactly the current version's credential: no orphan.
//
// The random sequence is logged; KEYTURN_KILL_SEED replays it.
func RunKills(t *testing.T, h KillHarness) KillReport {
	t.Helper()
	if h.Kills <= 0 {
		h.Kills = 20
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("KEYTURN_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KEYTURN_KILL_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("kill seed %d (KEYTURN_KILL_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	k := &killer{}
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := rotation.Steps{
		SecretID: "rotatortest/killed",
		Rotator:  h.New(t, k.point),
		Store:    killStore{Store: store, point: k.point},
	}
	ctx := t.Context()

	// A clean first rotation gives the secret a current version and measures how many
	// points a Create passes.
	var (
		perCreate int
		order     []int
		report    KillReport
	)
	covered := false // every point of a Create has been struck first once
	for round := 0; report.Kills < h.Kills || !covered; round++ {
		if round > 4*h.Kills+100 {
			t.Fatalf("only %d kills in %d rotations", report.Kills, round)
		}
		token := secret.VersionToken(fmt.Sprintf("rotate/killed/run-%d", round))
		since := time.Now()
		var (
			kills []string // where this rotation's attempts were killed
			live  []string // on the target right after the last kill
		)
		for attempt := 0; ; attempt++ {
			at := 0
			switch {
			case round == 0 || attempt >= 3:
			case attempt == 0:
				// The first kill of a rotation strikes the points of a Create in a random
				// order, each once before any twice, so that every instant is hit.
				if len(order) == 0 {
					order = rng.Perm(perCreate)
				}
				at, order = 1+order[0], order[1:]
				covered = covered || len(order) == 0
			case rng.IntN(2) == 0:
				at = 1 + rng.IntN(perCreate)
			}
			point, ok := k.run(at, func() error {
				_, err := steps.Create(ctx, token, rotation.WithMintSince(since))
				return err
			})
			if !ok {
				kills = append(kills, point)
				live = h.Live(t)
				continue
			}
			if point != "" {
				t.Fatalf("round %d: Create: %v", round, point)
			}
			if at == 0 {
				perCreate = max(perCreate, k.passed())
			}
			break
		}
		current := finishRotation(t, ctx, steps, token)
		report.Rotations++
		after := h.Live(t)
		slices.Sort(after)
		if want := []string{h.Handle(current)}; !slices.Equal(after, want) {
			t.Errorf("round %d (killed at %q): the target holds %v after the rotation, want only the current version's %v",
				round, kills, after, want)
		}
		if len(kills) == 0 {
			continue
		}
		report.Kills += len(kills)
		report.AfterKill = append(report.AfterKill, len(live))
		report.AfterRetry = append(report.AfterRetry, len(after))
		t.Logf("round %d: killed at %q: %d credential(s) on the target after the last kill, %d after the retried rotation",
			round, kills, len(live), len(after))
		if t.Failed() {
			break
		}
	}
	t.Logf("%d kills in %d rotations; credentials on the target after each kill %v, after each retried rotation %v (want 1 each)",
		report.Kills, len(report.AfterRetry), report.AfterKill, report.AfterRetry)
	return report
}

// finishRotation tests and promotes token's version, then revokes and purges the
// previous one, and returns the new current version.
func finishRotation(t *testing.T, ctx context.Context, steps rotation.Steps, token secret.VersionToken) secret.Version {
	t.Helper()
	if err := steps.Test(ctx, token); err != nil {
		t.Fatalf("Test after Create: %v", err)
	}
	res, err := steps.Promote(ctx, token)
	if err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if res.Previous != nil {
		if err := steps.Revoke(ctx, *res.Previous, &res.Current); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if err := steps.Purge(ctx, *res.Previous, &res.Current); err != nil {
			t.Fatalf("Purge: %v", err)
		}
	}
	return res.Current
}

// killer counts the points an armed Create passes and ends the goroutine at one of them.
type killer struct {
	mu     sync.Mutex
	armed  bool
	at, n  int
	killed string
}

// run runs f in a goroutine of its own with the killer armed to end it at point number
// at (never, if at is 0). It returns false and the point's name if the goroutine was
// ended there, or true and f's error text.
func (k *killer) run(at int, f func() error) (string, bool) {
	k.mu.Lock()
	k.armed, k.at, k.n, k.killed = true, at, 0, ""
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.armed = false
		k.mu.Unlock()
	}()
	var (
		err      error
		finished bool
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		err = f()
		finished = true
	}()
	<-done
	if !finished {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.killed, false
	}
	if err != nil {
		return err.Error(), true
	}
	return "", true
}

// passed is how many points the last run passed.
func (k *killer) passed() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// point is the hook a rotator's target calls and the store pass through.
func (k *killer) point(name string) {
	k.mu.Lock()
	if !k.armed {
		k.mu.Unlock()
		return
	}
	k.n++
	if k.at == 0 || k.n != k.at {
		k.mu.Unlock()
		return
	}
	k.killed = name
	k.mu.Unlock()
	runtime.Goexit()
}

// killStore passes every store call through point, before and after.
type killStore struct {
	stores.Store
	point func(string)
}

func (s killStore) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	s.point("before store StagePending")
	v, err := s.Store.StagePending(ctx, req)
	s.point("after store StagePending")
	return v, err
}

func (s killStore) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	s.point("before store Read")
	v, m, err := s.Store.Read(ctx, id, stage)
	s.point("after store Read")
	return v, m, err
}

func (s killStore) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	s.point("before store ReadVersion")
	v, m, err := s.Store.ReadVersion(ctx, id, token)
	s.point("after store ReadVersion")
	return v, m, err
}

func (s killStore) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	s.point("before store ListVersions")
	vs, err := s.Store.ListVersions(ctx, id)
	s.point("after store ListVersions")
	return vs, err
}

// PointTransport returns a RoundTripper that passes every request through point, named
// by method and path (and the Action of an AWS Query API call): before it is sent, and
// after the answer arrived but before the caller sees it. A kill at the second point is
// the instant that orphans credentials: the target acted, nobody heard.
func PointTransport(next http.RoundTripper, point func(string)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return pointTransport{next: next, point: point}
}

type pointTransport struct {
	next  http.RoundTripper
	point func(string)
}

func (p pointTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	name := r.Method + " " + r.URL.Path
	if action := queryAction(r); action != "" {
		name += " " + action
	}
	p.point("before " + name)
	resp, err := p.next.RoundTrip(r)
	p.point("after " + name)
	return resp, err
}

// queryAction reads the Action of an AWS Query API request from a copy of its body.
func queryAction(r *http.Request) string {
	if r.Body == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	// The body is read and put back as it was: the signature covers its hash.
	data, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	form, err := url.ParseQuery(string(data))
	if err != nil {
		return ""
	}
	return form.Get("Action")
}
