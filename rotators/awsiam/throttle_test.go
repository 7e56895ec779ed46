package awsiam

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"golang.org/x/time/rate"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// rateLimitedIAM stands in front of moto as IAM does for an account that calls too fast:
// calls within its rate go through, the others get IAM's Throttling error.
type rateLimitedIAM struct {
	limiter   *rate.Limiter
	moto      *httputil.ReverseProxy
	throttled atomic.Int64
}

// iamThrottling is IAM's answer to a throttled call (the query protocol's error form).
const iamThrottling = `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">` +
	`<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>` +
	`<RequestId>throttled-by-test</RequestId></ErrorResponse>`

func (l *rateLimitedIAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.limiter.Allow() {
		l.throttled.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, iamThrottling)
		return
	}
	l.moto.ServeHTTP(w, r)
}

// startRateLimitedIAM returns an AWS configuration whose IAM calls go through a
// rateLimitedIAM of perSecond calls (burst calls at once) to srv.
func startRateLimitedIAM(t *testing.T, srv *mototest.Server, perSecond float64, burst int) (aws.Config, *rateLimitedIAM) {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	l := &rateLimitedIAM{limiter: rate.NewLimiter(rate.Limit(perSecond), burst), moto: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(l)
	t.Cleanup(front.Close)
	cfg := srv.AWSConfig(t.Context())
	cfg.BaseEndpoint = aws.String(front.URL)
	return cfg, l
}

// revokeBurst mints a key for each of n fresh users straight through moto, then revokes
// them all at once through cfg with opts. It returns each revoke's error, whether each
// key is still active afterwards, and how long the revokes took.
func revokeBurst(t *testing.T, cfg aws.Config, n int, opts ...Option) (errs []error, active []bool, took time.Duration) {
	t.Helper()
	targets := make([]target, n)
	versions := make([]secret.Version, n)
	rots := make([]*Rotator, n)
	for i := range targets {
		targets[i] = newTarget(t)
		s := &steps{t: t, r: targets[i].rotator(t, nil)} // the setup is not throttled
		versions[i], _ = s.mint(nil)
		r, err := New(Config{UserName: targets[i].user}, cfg, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rots[i] = r
	}
	errs = make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i, r := range rots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Revoke(t.Context(), rotators.RevokeRequest{Version: versions[i]})
		}()
	}
	wg.Wait()
	took = time.Since(start)
	active = make([]bool, n)
	for i := range targets {
		active[i] = targets[i].keys(t)[keyID(versions[i])] == types.StatusTypeActive
		if errs[i] != nil && !strings.Contains(errs[i].Error(), "Throttling") {
			t.Errorf("revoke %d failed otherwise than by throttling: %v", i, errs[i])
		}
	}
	return errs, active, took
}

// count returns how many of xs are true (or non-nil).
func count[T comparable](xs []T) int {
	var zero T
	k := 0
	for _, x := range xs {
		if x != zero {
			k++
		}
	}
	return k
}

// An incident revokes many keys at once, and IAM throttles an account that calls faster
// than its limit. Through a shared Throttle every revoke waits its turn and succeeds;
// with the SDK's default retries, the same burst leaves keys active.
func TestThrottledRevokesWaitTheirTurn(t *testing.T) {
	const (
		users     = 24
		perSecond = 3
		burst     = 2
	)
	// The SDK's default makes 3 attempts, waiting below 2 s and then below 4 s: within
	// about 6 s the limit lets at most burst+6*perSecond = 20 calls through, fewer than
	// users, so the default must leave some keys active. A Throttle keeps trying for
	// about 20 s on average, while these revokes need users/perSecond = 8 s.
	t.Run("default retries", func(t *testing.T) {
		cfg, limit := startRateLimitedIAM(t, mototest.Need(t, moto), perSecond, burst)
		errs, active, took := revokeBurst(t, cfg, users)
		failed := count(errs)
		if failed == 0 || count(active) != failed {
			t.Fatalf("%d of %d revokes failed and %d keys are still active (%d calls throttled): want some failed, each leaving its key active", failed, users, count(active), limit.throttled.Load())
		}
		t.Logf("default retries: %d of %d revokes failed within %s (%d calls throttled)", failed, users, took.Round(100*time.Millisecond), limit.throttled.Load())
	})
	t.Run("shared throttle", func(t *testing.T) {
		cfg, limit := startRateLimitedIAM(t, mototest.Need(t, moto), perSecond, burst)
		errs, active, took := revokeBurst(t, cfg, users, WithThrottle(NewThrottle()))
		if count(errs) != 0 || count(active) != 0 {
			t.Fatalf("%d of %d revokes failed and %d keys are still active", count(errs), users, count(active))
		}
		if limit.throttled.Load() == 0 {
			t.Fatalf("no call was throttled: the test did not exercise the throttle")
		}
		t.Logf("shared throttle: %d revokes done in %s (%d calls throttled)", users, took.Round(100*time.Millisecond), limit.throttled.Load())
	})
}

// The SDK's adaptive mode, once throttled, would pace every later call for good. The
// Throttle keeps its pacing while IAM throttles and starts afresh, unpaced, once IAM has
// throttled nothing for the quiet spell.
func TestThrottleStopsPacingAfterAQuietSpell(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	th := NewThrottle()
	th.now = func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }

	cfg, limit := startRateLimitedIAM(t, mototest.Need(t, moto), 3, 2)
	if errs, _, _ := revokeBurst(t, cfg, 8, WithThrottle(th)); count(errs) != 0 || limit.throttled.Load() == 0 {
		t.Fatalf("%d revokes failed, %d calls throttled: want none failed and some throttled", count(errs), limit.throttled.Load())
	}
	paced := th.current()
	if th.lastThrottled.IsZero() {
		t.Fatal("IAM throttled calls, but the Throttle did not note it")
	}
	advance(throttleQuiet - time.Second)
	if th.current() != paced {
		t.Fatal("the Throttle stopped pacing before the quiet spell was over")
	}
	advance(2 * time.Second)
	if th.current() == paced || !th.lastThrottled.IsZero() {
		t.Fatal("the Throttle still paces after a quiet spell")
	}
	// And the fresh mode works: a burst straight to moto, which never throttles.
	if errs, active, _ := revokeBurst(t, mototest.Need(t, moto).AWSConfig(t.Context()), 4, WithThrottle(th)); count(errs) != 0 || count(active) != 0 {
		t.Fatalf("after the quiet spell: %d revokes failed, %d keys active", count(errs), count(active))
	}
}
