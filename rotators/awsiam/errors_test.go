package awsiam

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

func TestPolicyFileIsLeastPrivilege(t *testing.T) {
	want := []string{"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"}
	got := slices.Sorted(slices.Values(policyActions(t)))
	if !slices.Equal(got, want) {
		t.Fatalf("iam-policy.json allows %v, want exactly %v", got, want)
	}
}

// Each step needs its own action: an admin without it gets ErrPermissionDenied, with the
// action and the user named and the policy file pointed to.
func TestPermissionDenied(t *testing.T) {
	e := startEnforced(t)
	all := policyActions(t)
	without := func(action string) string {
		return mototest.AllowActions(slices.DeleteFunc(slices.Clone(all), func(a string) bool { return a == action })...)
	}
	mint := func(t *testing.T, r *Rotator, _ secret.Version) error {
		_, _, err := (&steps{t: t, r: r}).tryMint(nil)
		return err
	}
	for _, tc := range []struct {
		missing string
		key     types.StatusType // the user's key before the call, if any
		call    func(t *testing.T, r *Rotator, v secret.Version) error
	}{
		{"iam:ListAccessKeys", "", mint},
		{"iam:CreateAccessKey", "", mint},
		{"iam:UpdateAccessKey", types.StatusTypeActive, func(t *testing.T, r *Rotator, v secret.Version) error {
			return r.Revoke(t.Context(), rotators.RevokeRequest{Version: v})
		}},
		{"iam:DeleteAccessKey", types.StatusTypeInactive, func(t *testing.T, r *Rotator, v secret.Version) error {
			return r.Purge(t.Context(), rotators.RevokeRequest{Version: v})
		}},
		{"iam:GetAccessKeyLastUsed", types.StatusTypeActive, func(t *testing.T, r *Rotator, v secret.Version) error {
			_, err := r.InUse(t.Context(), rotators.UsageRequest{Version: v, Since: time.Now()})
			return err
		}},
	} {
		t.Run(tc.missing, func(t *testing.T) {
			tg := e.target(t, without(tc.missing))
			var v secret.Version
			if tc.key != "" {
				v = version(tg, tg.createKey(t, tc.key))
			}
			before := tg.keys(t)
			err := tc.call(t, tg.rotator(t, nil), v)
			wantErr(t, err, rotators.ErrPermissionDenied, tc.missing, tg.user, "iam-policy.json")
			tg.wantKeys(t, before)
		})
	}
}

func TestRefusedAdminCredentialsArePermissionDenied(t *testing.T) {
	e := startEnforced(t)
	tg := e.target(t, policyFromFile(t))
	tg.admin = withCredentials(tg.admin, "AKIANOSUCHKEY0000000", "no-such-secret")
	_, _, err := (&steps{t: t, r: tg.rotator(t, nil)}).tryMint(nil)
	wantErr(t, err, rotators.ErrPermissionDenied, "iam:ListAccessKeys", "403", "credentials")
}

func forbidden(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: "UnknownError"},
	}}
}

func version(tg target, id string) secret.Version {
	return secret.Version{Number: 1, Metadata: map[string]string{MetadataAccessKeyID: id, MetadataUser: tg.user}}
}

func TestFailClassification(t *testing.T) {
	r := &Rotator{cfg: Config{UserName: "app"}}
	for _, tc := range []struct {
		err    error
		denied bool
	}{
		{&smithy.GenericAPIError{Code: "AccessDenied"}, true},
		{&smithy.GenericAPIError{Code: "AccessDeniedException"}, true},
		{&smithy.GenericAPIError{Code: "UnauthorizedOperation"}, true},
		{&smithy.GenericAPIError{Code: "InvalidClientTokenId"}, true},
		{&smithy.GenericAPIError{Code: "Throttling", Fault: smithy.FaultServer}, false},
		{&types.LimitExceededException{}, false},
		{&types.NoSuchEntityException{}, false},
		{errors.New("connection refused"), false},
		// A 403 whose body the SDK could not read, as moto's refusals are.
		{forbidden(http.StatusForbidden), true},
		{forbidden(http.StatusInternalServerError), false},
	} {
		got := r.fail("iam:CreateAccessKey", tc.err)
		if errors.Is(got, rotators.ErrPermissionDenied) != tc.denied {
			t.Errorf("fail(%v) = %v; permission denied %v, want %v", tc.err, got, !tc.denied, tc.denied)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("fail(%v) lost the AWS error", tc.err)
		}
	}
	if !isNoSuchEntity(fmt.Errorf("wrapped: %w", &types.NoSuchEntityException{})) || !isNoSuchEntity(&smithy.GenericAPIError{Code: "NoSuchEntity"}) {
		t.Error("NoSuchEntity not recognised")
	}
}
