package awsiam

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// The patience of a throttled IAM call: attempts in all, and the longest wait between two.
// Ten attempts with waits of up to 5 s keep a call trying for about half a minute, while
// the activity around it heartbeats; the SDK's default (three attempts) gives up within
// seconds of a burst.
const (
	throttleMaxAttempts = 10
	throttleMaxBackoff  = 5 * time.Second
)

// Throttle paces the IAM calls of every Rotator that shares it. IAM limits the rate of
// each account's API calls and answers the excess with a Throttling error ("Rate
// exceeded"). An incident contains many keys at once (four containment batches, each
// working on 16 secrets at a time) on top of the worker's scheduled rotations, so the
// calls of one worker must slow down together rather than each fail on its own.
//
// A Throttle is the AWS SDK's adaptive retry mode, shared: once IAM throttles a call,
// every call through the Throttle waits for a token of a bucket whose rate follows the
// throttling (and recovers when it stops). A throttled call is tried up to 10 times. The
// SDK's retry quota, which fails every call at once after about 100 retries across the
// clients sharing it, is off: the adaptive bucket paces the retries instead.
//
// Make one per worker (per AWS account) and pass it to every New with WithThrottle.
type Throttle struct {
	retryer aws.RetryerV2
}

// NewThrottle returns a Throttle with no limit until IAM first throttles a call.
func NewThrottle() *Throttle {
	return &Throttle{retryer: retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
			so.MaxAttempts = throttleMaxAttempts
			so.MaxBackoff = throttleMaxBackoff
			so.RateLimiter = ratelimit.None
		})
	})}
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
