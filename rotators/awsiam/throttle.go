package awsiam

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// The patience of a throttled IAM call: attempts in all, and the longest wait between two.
// Ten attempts with random waits of up to 2 s, 4 s, then 5 s keep a call trying for about
// 20 s on average, while the activity around it heartbeats; the SDK's default (three
// attempts) gives up within seconds of a burst.
const (
	throttleMaxAttempts = 10
	throttleMaxBackoff  = 5 * time.Second
)

// throttleQuiet is how long IAM must go without throttling a call before the Throttle
// stops pacing. The SDK's adaptive mode, once throttled, paces its calls for good, at a
// rate it derives from the calls it measured last: after an idle spell that is close to
// nothing, so an incident a week after a throttle would start at half a call a second.
const throttleQuiet = time.Minute

// Throttle paces the IAM calls of every Rotator that shares it. IAM limits the rate of
// each account's API calls and answers the excess with a Throttling error ("Rate
// exceeded"). An incident contains many keys at once (four containment batches, each
// working on 16 secrets at a time) on top of the worker's scheduled rotations, so the
// calls of one worker must slow down together rather than each fail on its own.
//
// A Throttle is an aws.RetryerV2 built on the AWS SDK's adaptive retry mode, shared:
//   - no pacing until IAM throttles a call; from then on every call through the Throttle
//     waits for a token of a bucket whose rate follows the throttling, and once IAM has
//     throttled nothing for throttleQuiet the pacing stops;
//   - a throttled call is tried up to 10 times, with random waits ("full jitter", so that
//     the calls held back do not all come back at once);
//   - the SDK's retry quota, which fails every call at once after about 100 retries
//     across the clients sharing it, is off: the bucket paces the retries instead.
//
// Make one per worker (per AWS account) and pass it to every New with WithThrottle.
type Throttle struct {
	quiet time.Duration
	now   func() time.Time

	mu   sync.Mutex
	mode *retry.AdaptiveMode
	// lastThrottled is when IAM last throttled a call through mode; zero if it has not.
	lastThrottled time.Time
}

var _ aws.RetryerV2 = (*Throttle)(nil)

// NewThrottle returns a Throttle that does not pace calls until IAM first throttles one.
func NewThrottle() *Throttle {
	return &Throttle{quiet: throttleQuiet, now: time.Now, mode: newAdaptiveMode()}
}

func newAdaptiveMode() *retry.AdaptiveMode {
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
			so.MaxAttempts = throttleMaxAttempts
			so.MaxBackoff = throttleMaxBackoff
			so.Backoff = retry.BackoffDelayerFunc(fullJitter)
			so.RateLimiter = ratelimit.None
		})
	})
}

// fullJitter waits a random time below min(throttleMaxBackoff, 2^attempt s) before retry
// number attempt: AWS's "full jitter" backoff. (The SDK's own waits exactly its maximum
// from the third retry on, which would send every held-back call again at once.)
func fullJitter(attempt int, _ error) (time.Duration, error) {
	ceiling := throttleMaxBackoff
	if attempt < 3 {
		ceiling = min(ceiling, time.Second<<attempt)
	}
	return rand.N(ceiling), nil
}

// current returns the adaptive mode in use, starting a fresh one, unpaced, when IAM has
// not throttled a call for t.quiet.
func (t *Throttle) current() *retry.AdaptiveMode {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.lastThrottled.IsZero() && t.now().Sub(t.lastThrottled) >= t.quiet {
		t.mode, t.lastThrottled = newAdaptiveMode(), time.Time{}
	}
	return t.mode
}

func (t *Throttle) noteThrottled() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastThrottled = t.now()
}

// isThrottle is the SDK's own test of a throttling error.
var isThrottle = retry.IsErrorThrottles(retry.DefaultThrottles)

// IsErrorRetryable implements aws.Retryer.
func (t *Throttle) IsErrorRetryable(err error) bool { return t.current().IsErrorRetryable(err) }

// MaxAttempts implements aws.Retryer.
func (t *Throttle) MaxAttempts() int { return throttleMaxAttempts }

// RetryDelay implements aws.Retryer.
func (t *Throttle) RetryDelay(attempt int, err error) (time.Duration, error) {
	return t.current().RetryDelay(attempt, err)
}

// GetRetryToken implements aws.Retryer.
func (t *Throttle) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return t.current().GetRetryToken(ctx, err)
}

// GetInitialToken implements aws.Retryer (deprecated there; the SDK calls
// GetAttemptToken).
func (t *Throttle) GetInitialToken() func(error) error { return t.current().GetInitialToken() }

// GetAttemptToken implements aws.RetryerV2: it waits for the adaptive mode's token, and
// notes a throttled answer when the attempt ends.
func (t *Throttle) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	release, err := t.current().GetAttemptToken(ctx)
	if err != nil {
		return nil, err
	}
	return func(opErr error) error {
		if isThrottle.IsErrorThrottle(opErr).Bool() {
			t.noteThrottled()
		}
		return release(opErr)
	}, nil
}

// Option changes how New builds a Rotator.
type Option func(*options)

type options struct {
	throttle *Throttle
}

// WithThrottle makes the Rotator's IAM calls go through t, shared with every other
// Rotator given t. Without it, each Rotator retries as the AWS configuration says (the
// SDK's default: three attempts).
func WithThrottle(t *Throttle) Option {
	return func(o *options) { o.throttle = t }
}
