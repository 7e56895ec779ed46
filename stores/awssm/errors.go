package awssm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyturn/keyturn/stores"
)

// Errors this package adds to those of package stores. Match them with errors.Is.
var (
	// ErrAccessDenied: AWS refused the call for lack of IAM permission. Retrying will not
	// help until the worker's policy grants the action named in the message; the
	// least-privilege policy is in the package doc and in iam-policy.json.
	ErrAccessDenied = fmt.Errorf("access denied by AWS IAM: %w", stores.ErrPermissionDenied)
	// ErrUnavailable: Secrets Manager could not be reached or failed on its side
	// (connection refused, timeout, throttling, HTTP 5xx) after the SDK's own retries.
	// It is transient: retry the operation later.
	ErrUnavailable = errors.New("AWS Secrets Manager unavailable")
)

// Error codes AWS returns that the SDK does not model as types for this service.
var (
	accessDeniedCodes = []string{"AccessDeniedException", "AccessDenied"}
	throttlingCodes   = []string{"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)

// apiError turns an SDK error from action on the named secret into one that says what
// failed and how to react, keeping the SDK error in the chain. AWS error messages name
// secrets, ARNs and request IDs, never values, so they are safe to pass on.
func (s *Store) apiError(action, name string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case isNotFound(err):
			return fmt.Errorf("%s: %w: %w", action, stores.ErrNotFound, err)
		case slices.Contains(accessDeniedCodes, code):
			return s.accessDenied(action, name, err)
		case slices.Contains(throttlingCodes, code) || apiErr.ErrorFault() == smithy.FaultServer:
			return fmt.Errorf("%s: %w at %s: %w", action, ErrUnavailable, s.where, err)
		}
		return fmt.Errorf("%s: %w", action, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller gave up (an activity timeout, a cancel): not the service's fault.
		return fmt.Errorf("%s: %w", action, err)
	}
	var sendErr *smithyhttp.RequestSendError
	var respErr *awshttp.ResponseError
	switch {
	case errors.As(err, &sendErr):
		// Connection refused, DNS failure, timeout: nothing answered.
		return fmt.Errorf("%s: %w: cannot reach %s: %w", action, ErrUnavailable, s.where, err)
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusForbidden:
		// A refusal whose body the SDK could not decode: moto answers this JSON service's
		// refusals in XML, and so may a proxy in front of the endpoint.
		return s.accessDenied(action, name, err)
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError:
		return fmt.Errorf("%s: %w at %s: %w", action, ErrUnavailable, s.where, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// accessDenied says which permission is missing, on what, and where the policy is.
func (s *Store) accessDenied(action, name string, err error) error {
	return fmt.Errorf("%w: secretsmanager:%s on secret %s was refused; grant it to the worker's IAM identity "+
		"for the secrets under this store's name prefix (see the policy in the stores/awssm package doc or iam-policy.json): %w",
		ErrAccessDenied, action, name, err)
}

// isNotFound reports whether AWS said the secret, or the asked version or label, does not
// exist.
func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// isCode reports whether err is an AWS error with the given code.
func isCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
