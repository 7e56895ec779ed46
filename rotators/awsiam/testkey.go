package awsiam

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyturn/keyturn/rotators"
)

// callMargin is kept free before the context's deadline, so that the last attempt can
// finish and Test can say what STS answered rather than fail with the context.
const callMargin = time.Second

// Test proves the version's key works and is the user's, in two steps:
//
//  1. IAM, asked by the admin, must list the key under the user as Active. moto's STS
//     (5.2.1) accepts an inactive key, and on AWS a key IAM reports inactive is refused
//     anyway, so this answers at once, without retries, what STS would answer only after
//     the consistency window. The workflow retries an ErrCredentialRejected step, which
//     covers the rare IAM read that lags its own write.
//  2. STS GetCallerIdentity, signed with the key, must succeed and name the user. STS
//     learns of a new or reactivated key seconds after IAM, so a refusal is retried with
//     backoff for up to ConsistencyTimeout (or the context's deadline, if sooner).
//
// A missing, inactive or refused key wraps rotators.ErrCredentialRejected; a key that
// signs in as another principal wraps rotators.ErrCheckFailed.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	id, err := r.keyOf(req.Version, req.Material)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	secretKey := req.Material.Get(FieldSecretAccessKey).Reveal()
	if secretKey == "" {
		return fmt.Errorf("test: access key %s: the material has no %s: %w", id, FieldSecretAccessKey, rotators.ErrCredentialRejected)
	}

	// Step 1. IAM's view of the key.
	keys, err := r.listKeys(ctx)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	i := slices.IndexFunc(keys, hasID(id))
	if i < 0 {
		return fmt.Errorf("test: IAM user %q has no access key %s (deleted, or another user's): %w",
			r.cfg.UserName, id, rotators.ErrCredentialRejected)
	}
	if status := keys[i].Status; status != types.StatusTypeActive {
		return fmt.Errorf("test: access key %s of IAM user %q is %s: %w", id, r.cfg.UserName, status, rotators.ErrCredentialRejected)
	}

	// Step 2. STS, signed with the key itself.
	caller, err := r.callerWithRetries(ctx, id, secretKey)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	if err := matchesUser(caller, r.cfg.UserName); err != nil {
		return fmt.Errorf("test: access key %s: %w: %w", id, err, rotators.ErrCheckFailed)
	}
	return nil
}

// callerWithRetries calls GetCallerIdentity with the key until STS accepts it, for at most
// ConsistencyTimeout, and returns the caller's ARN. The last attempt is made at the
// deadline, so the whole window is used. Errors other than a refused credential (the
// network, the context) are returned at once: the SDK has retried those already.
func (r *Rotator) callerWithRetries(ctx context.Context, id, secretKey string) (string, error) {
	cfg := r.admin.Copy() // the admin's region, endpoint, HTTP client and middleware
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secretKey, "")
	client := sts.NewFromConfig(cfg)

	start := time.Now()
	deadline := start.Add(r.cfg.ConsistencyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-callMargin).Before(deadline) {
		deadline = d.Add(-callMargin)
	}
	delay := r.retryDelay
	for attempt := 1; ; attempt++ {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err == nil {
			return aws.ToString(out.Arn), nil
		}
		if !isRefusedCredential(err) {
			return "", fmt.Errorf("sts:GetCallerIdentity with access key %s: %w", id, scrub(err, secretKey))
		}
		wait := min(delay, time.Until(deadline))
		if wait <= 0 {
			return "", fmt.Errorf("STS refused access key %s of IAM user %q for %s (%d attempts; IAM lists it as active): %w: %w",
				id, r.cfg.UserName, time.Since(start).Round(time.Millisecond), attempt, rotators.ErrCredentialRejected, scrub(err, secretKey))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", fmt.Errorf("STS refused access key %s of IAM user %q until the call was cancelled (%d attempts): %w: %w",
				id, r.cfg.UserName, attempt, rotators.ErrCredentialRejected, ctx.Err())
		case <-timer.C:
		}
		delay = min(2*delay, r.maxRetryDelay)
	}
}

// matchesUser checks that a caller ARN is the IAM user named user, with any path:
// arn:<partition>:iam::<account>:user[/<path>]/<user>. An assumed role, a federated user or
// another user is not.
func matchesUser(callerARN, user string) error {
	a, err := arn.Parse(callerARN)
	if err != nil {
		return fmt.Errorf("STS named the caller %q, which is not an ARN", callerARN)
	}
	rest, isUser := strings.CutPrefix(a.Resource, "user/")
	// IAM user names cannot hold '/', so the last segment is the name and any before it
	// the path.
	if a.Service != "iam" || !isUser || rest[strings.LastIndexByte(rest, '/')+1:] != user {
		return fmt.Errorf("it signs in as %s, not as IAM user %q", callerARN, user)
	}
	return nil
}
