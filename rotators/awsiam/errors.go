package awsiam

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Error codes AWS uses that the SDK does not model as types.
var (
	// accessDeniedCodes: the admin principal may not make the call. UnauthorizedOperation
	// is what some services (and an SCP through them) answer instead of AccessDenied.
	accessDeniedCodes = []string{"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
	// refusedCredentialCodes: the credential that signed the call was not accepted at all
	// (no such key, a deleted one, a wrong secret, or, for a fresh key, one STS does not
	// know yet).
	refusedCredentialCodes = []string{"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"}
)

// fail wraps an error from an IAM call the admin principal made, naming the action and the
// user. A refusal wraps rotators.ErrPermissionDenied, which is final: retrying cannot grant
// a permission. AWS error messages name users, keys and ARNs, never a secret access key.
func (r *Rotator) fail(action string, err error) error {
	switch {
	case hasCode(err, accessDeniedCodes...):
		return fmt.Errorf("%s on IAM user %q was refused: %w: grant it to the admin principal "+
			"(the policy is in rotators/awsiam/iam-policy.json): %w", action, r.cfg.UserName, rotators.ErrPermissionDenied, err)
	case hasCode(err, refusedCredentialCodes...):
		// The admin's own credential, not the one under test: nothing this rotator does
		// will work until the worker's AWS credentials are fixed.
		return fmt.Errorf("%s on IAM user %q: %w: AWS does not accept the admin credentials the worker uses; "+
			"check its AWS credential chain (AWS_PROFILE, role, keys): %w", action, r.cfg.UserName, rotators.ErrPermissionDenied, err)
	case isForbidden(err):
		// IAM answers 403 only to refuse the caller. The SDK could not read which refusal
		// it was: moto's is <ErrorResponse><Errors><Error>, not the query protocol's shape.
		return fmt.Errorf("%s on IAM user %q was refused (HTTP 403): %w: grant it to the admin principal "+
			"(the policy is in rotators/awsiam/iam-policy.json) and check that AWS accepts the worker's credentials: %w",
			action, r.cfg.UserName, rotators.ErrPermissionDenied, err)
	}
	return fmt.Errorf("%s on IAM user %q: %w", action, r.cfg.UserName, err)
}

// hasCode reports whether err is an AWS API error with one of the codes.
func hasCode(err error, codes ...string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && slices.Contains(codes, apiErr.ErrorCode())
}

// isForbidden reports whether AWS answered HTTP 403, whatever the body said.
func isForbidden(err error) bool {
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusForbidden
}

// isRefusedCredential reports whether AWS refused the credential that signed a call: by
// its code or, when the SDK could not read the code, by HTTP 403, which is all
// GetCallerIdentity can refuse for (it needs no permission).
func isRefusedCredential(err error) bool {
	return hasCode(err, refusedCredentialCodes...) || isForbidden(err)
}

// isNoSuchEntity reports whether IAM said the user or the key does not exist.
func isNoSuchEntity(err error) bool {
	var nse *types.NoSuchEntityException
	return errors.As(err, &nse) || hasCode(err, "NoSuchEntity")
}

// scrub returns err, or, should its text hold the secret access key, the same error
// with the key replaced (secret.ScrubError). Neither the SDK nor AWS put a secret in an
// error; this makes sure of it for the one call signed with the key under test.
func scrub(err error, secretKey string) error { return secret.ScrubError(err, []string{secretKey}) }

// invalidConfig is an error wrapping rotators.ErrInvalidConfig.
func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("awsiam: %w: %s", rotators.ErrInvalidConfig, fmt.Sprintf(format, args...))
}
