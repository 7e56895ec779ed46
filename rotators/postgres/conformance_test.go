package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// recording wraps a Rotator and remembers every password it generated, so a test can
// check afterwards that none of them reached the server log in the clear.
type recording struct {
	*Rotator
	mu        sync.Mutex
	passwords []string
}

func (r *recording) Generate(ctx context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	g, err := r.Rotator.Generate(ctx, req)
	if err == nil {
		r.mu.Lock()
		r.passwords = append(r.passwords, g.Material.Get(FieldPassword).Reveal())
		r.mu.Unlock()
	}
	return g, err
}

// harness builds a fresh role per subtest, managed by the least-privilege admin, through
// pools when they are given (as the worker does).
func harness(strategy string, pools *Pools, check func(t *testing.T, cfg Config, prev, next secret.Version)) rotatortest.Harness {
	var (
		mu   sync.Mutex
		cfgs = map[*testing.T]Config{}
	)
	h := rotatortest.Harness{
		Name: strategy,
		New: func(t *testing.T) rotators.Rotator {
			cfg := newConfig(t, strategy)
			cfg.Pools = pools
			mu.Lock()
			cfgs[t] = cfg
			mu.Unlock()
			rec := &recording{Rotator: mustNew(t, cfg)}
			t.Cleanup(func() { wantNotInServerLog(t, rec.passwords) })
			return rec
		},
	}
	if check != nil {
		h.AfterRotation = func(t *testing.T, prev, next secret.Version) {
			mu.Lock()
			cfg := cfgs[t]
			mu.Unlock()
			check(t, cfg, prev, next)
		}
	}
	return h
}

func TestConformanceAlternating(t *testing.T) {
	pgtest.Need(t, cluster)
	rotatortest.Run(t, harness(StrategyAlternating, nil, func(t *testing.T, cfg Config, prev, next secret.Version) {
		// Each round moves to the other twin.
		cfg.ApplyDefaults()
		p, n := prev.Metadata[MetadataRole], next.Metadata[MetadataRole]
		if p == n || (n != cfg.Twins[0] && n != cfg.Twins[1]) {
			t.Errorf("rotation went from %q to %q, want the other twin of %v", p, n, cfg.Twins)
		}
	}))
}

// TestConformancePooled runs the suite with the admin sessions pooled, as in the worker:
// every subtest's rotators share one Pools.
func TestConformancePooled(t *testing.T) {
	pgtest.Need(t, cluster)
	pools := NewPools(0)
	t.Cleanup(pools.Close)
	t.Run(StrategyAlternating, func(t *testing.T) { rotatortest.Run(t, harness(StrategyAlternating, pools, nil)) })
	t.Run(StrategySingle, func(t *testing.T) { rotatortest.Run(t, harness(StrategySingle, pools, nil)) })
}

func TestConformanceSingle(t *testing.T) {
	pgtest.Need(t, cluster)
	rotatortest.Run(t, harness(StrategySingle, nil, func(t *testing.T, cfg Config, prev, next secret.Version) {
		if prev.Metadata[MetadataRole] != cfg.Role || next.Metadata[MetadataRole] != cfg.Role {
			t.Errorf("single strategy used roles %q and %q, want %q for both",
				prev.Metadata[MetadataRole], next.Metadata[MetadataRole], cfg.Role)
		}
	}))
}
