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
	// about half a minute, while these revokes need users/perSecond = 8 s.
	revokeAll := func(t *testing.T, opts ...Option) (failed int, throttled int64, active []string, took time.Duration) {
		srv := mototest.Need(t, moto)
		cfg, limit := startRateLimitedIAM(t, srv, perSecond, burst)
		targets := make([]target, users)
		versions := make([]secret.Version, users)
		for i := range targets {
			targets[i] = newTarget(t)
			s := &steps{t: t, r: targets[i].rotator(t, nil)} // straight to moto: the setup is not throttled
			versions[i], _ = s.mint(nil)
		}
		errs := make([]error, users)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range targets {
			r, err := New(Config{UserName: targets[i].user}, cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.Revoke(t.Context(), rotators.RevokeRequest{Version: versions[i]})
			}()
		}
		wg.Wait()
		took = time.Since(start)
		for i, err := range errs {
			if err != nil {
				failed++
				if !strings.Contains(err.Error(), "Throttling") {
					t.Errorf("revoke %d failed otherwise than by throttling: %v", i, err)
				}
			}
			if targets[i].keys(t)[keyID(versions[i])] == types.StatusTypeActive {
				active = append(active, keyID(versions[i]))
			}
		}
		return failed, limit.throttled.Load(), active, took
	}

	t.Run("default retries", func(t *testing.T) {
		failed, throttled, active, took := revokeAll(t)
		if failed == 0 || len(active) != failed {
			t.Fatalf("%d of %d revokes failed and %d keys are still active (%d calls throttled): want some failed, each leaving its key active", failed, users, len(active), throttled)
		}
		t.Logf("default retries: %d of %d revokes failed within %s (%d calls throttled)", failed, users, took.Round(100*time.Millisecond), throttled)
	})
	t.Run("shared throttle", func(t *testing.T) {
		failed, throttled, active, took := revokeAll(t, WithThrottle(NewThrottle()))
		if failed != 0 || len(active) != 0 {
			t.Fatalf("%d of %d revokes failed and keys %v are still active", failed, users, active)
		}
		if throttled == 0 {
			t.Fatalf("no call was throttled: the test did not exercise the throttle")
		}
		t.Logf("shared throttle: %d revokes done in %s (%d calls throttled)", users, took.Round(100*time.Millisecond), throttled)
	})
}
