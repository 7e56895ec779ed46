package awssm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func TestMotoStoppedGivesARetryableErrorNotNotFound(t *testing.T) {
	srv := mototest.Start(t) // its own server: this test stops it
	cfg := srv.AWSConfig(t.Context())
	// The SDK's standard retry policy (3 attempts) with a short backoff, so the test shows
	// the error callers get after the SDK's retries without waiting seconds per call.
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 50 * time.Millisecond })
	}
	s, err := NewFromConfig(cfg, Config{NamePrefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID(t)
	mustStage(t, s, id, "v1", pw(t), nil)
	mustPromote(t, s, id, "v1")
	mustStage(t, s, id, "v2", pw(t), nil)

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	calls := map[string]func() error{
		"StagePending": func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "v3", Material: pw(t)})
			return err
		},
		"Read":           func() error { _, _, err := s.Read(ctx, id, secret.StageCurrent); return err },
		"ReadVersion":    func() error { _, _, err := s.ReadVersion(ctx, id, "v1"); return err },
		"Promote":        func() error { return s.Promote(ctx, id, "v2") },
		"DiscardPending": func() error { return s.DiscardPending(ctx, id, "v2") },
		"ListVersions":   func() error { _, err := s.ListVersions(ctx, id); return err },
		"ReadField":      func() error { _, err := s.ReadField(ctx, testPrefix+string(id), "password"); return err },
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls {
			if !yield(k) {
				return
			}
		}
	}) {
		start := time.Now()
		err := calls[name]()
		switch {
		case err == nil:
			t.Fatalf("%s succeeded with moto stopped", name)
		case !errors.Is(err, ErrUnavailable):
			t.Fatalf("%s: %v; want ErrUnavailable", name, err)
		case errors.Is(err, stores.ErrNotFound) || errors.Is(err, stores.ErrConflict) || errors.Is(err, ErrAccessDenied):
			t.Fatalf("%s: %v; an outage must not look like an answer", name, err)
		case !strings.Contains(err.Error(), srv.Endpoint):
			t.Fatalf("%s: %v; want the endpoint named", name, err)
		}
		t.Logf("%s failed after %s: %v", name, time.Since(start).Round(time.Millisecond), err)
	}

	// Back on the same endpoint, the store works again; moto kept nothing in memory.
	srv.Restart(t)
	if _, _, err := s.Read(t.Context(), id, secret.StageCurrent); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read after restart: %v; want ErrNotFound (moto lost its state)", err)
	}
	mustStage(t, s, id, "v3", pw(t), nil)
	mustPromote(t, s, id, "v3")
}

func TestAccessDeniedNamesTheActionTheSecretAndThePolicy(t *testing.T) {
	policy, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	describeOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue"],"Resource":"*"}]}`
	// CreateUser, two PutUserPolicy, CreateAccessKey; IAM is enforced after that. moto
	// checks the policy file's syntax, but matches Secrets Manager calls against the
	// resource "*" only, so the scoped policy grants nothing here: the refusal comes from
	// CreateSecret being outside describeOnly.
	srv := mototest.StartWith(t, mototest.Options{Env: map[string]string{"INITIAL_NO_AUTH_ACTION_COUNT": "4"}})
	creds := srv.CreateIAMUser(t, "keyturn-worker", string(policy), describeOnly)
	cfg := srv.AWSConfig(t.Context())
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	s, err := NewFromConfig(cfg, Config{NamePrefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID(t)
	canary := "canary-" + string(uniqueID(t)[len("awssm-test/"):])
	_, err = s.StagePending(t.Context(), stores.StageRequest{
		SecretID: id, Token: "v1", Material: secret.Material{"password": secret.NewSensitive(canary)},
	})
	if !errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrUnavailable) || errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("StagePending without CreateSecret: %v; want ErrAccessDenied only", err)
	}
	for _, want := range []string{"secretsmanager:CreateSecret", testPrefix + string(id), "iam-policy.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), canary) {
		t.Fatal("the error shows the material")
	}
	t.Logf("refusal: %v", err)
	// Reading is allowed: an absent secret is an answer, not a refusal.
	if _, _, err := s.Read(t.Context(), id, secret.StageCurrent); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read with GetSecretValue allowed: %v; want ErrNotFound", err)
	}
}

func TestAPIErrorClassification(t *testing.T) {
	s := &Store{where: "endpoint http://example.invalid"}
	for name, tc := range map[string]struct {
		err  error
		want []error
		not  []error
	}{
		"not found":        {err: &types.ResourceNotFoundException{}, want: []error{stores.ErrNotFound}, not: []error{ErrUnavailable}},
		"access denied":    {err: &smithy.GenericAPIError{Code: "AccessDeniedException"}, want: []error{ErrAccessDenied}, not: []error{ErrUnavailable}},
		"throttled":        {err: &smithy.GenericAPIError{Code: "ThrottlingException"}, want: []error{ErrUnavailable}},
		"server fault":     {err: &types.InternalServiceError{}, want: []error{ErrUnavailable}},
		"refused":          {err: &smithyhttp.RequestSendError{Err: syscall.ECONNREFUSED}, want: []error{ErrUnavailable, syscall.ECONNREFUSED}},
		"invalid request":  {err: &types.InvalidRequestException{}, not: []error{ErrUnavailable, ErrAccessDenied, stores.ErrNotFound}},
		"caller cancelled": {err: &smithyhttp.RequestSendError{Err: context.Canceled}, want: []error{context.Canceled}, not: []error{ErrUnavailable}},
	} {
		got := s.apiError("GetSecretValue", "keyturn/x", tc.err)
		for _, w := range tc.want {
			if !errors.Is(got, w) {
				t.Errorf("%s: %v does not wrap %v", name, got, w)
			}
		}
		for _, n := range tc.not {
			if errors.Is(got, n) {
				t.Errorf("%s: %v wraps %v", name, got, n)
			}
		}
		if !strings.HasPrefix(got.Error(), "GetSecretValue") && !errors.Is(got, ErrAccessDenied) {
			t.Errorf("%s: %q does not start with the action", name, got)
		}
	}
}
