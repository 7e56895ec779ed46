package awssm

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/storetest"
)

// policyPrefix is the name prefix iam-policy.json is written for. moto does not check
// it (see policyActions), but a store under it is the deployment the file describes.
const policyPrefix = "keyturn/"

// policyActions returns the actions iam-policy.json allows.
//
// Under moto only the actions can be tested: moto checks Secrets Manager calls against
// the resource "*" alone, so the file's secret ARNs would grant nothing, and it ignores
// the tag-key condition. The principals below therefore hold these actions on Resource
// "*" (mototest.AllowActions); the ARN scoping and the condition are AWS's to enforce.
func policyActions(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	actions, err := mototest.PolicyActions(doc)
	if err != nil {
		t.Fatalf("iam-policy.json: %v", err)
	}
	return actions
}

// principals starts a moto server of the test's own that enforces IAM and creates one
// IAM user for each policy, returning a configuration that signs as each user.
func principals(t *testing.T, policies ...string) []aws.Config {
	t.Helper()
	// CreateIAMUser makes three IAM calls for a user with one policy; moto lets exactly
	// those through unchecked and checks every later call against the users' policies.
	srv := mototest.StartWith(t, mototest.Options{Env: map[string]string{
		"INITIAL_NO_AUTH_ACTION_COUNT": strconv.Itoa(3 * len(policies)),
	}})
	out := make([]aws.Config, len(policies))
	for i, p := range policies {
		creds := srv.CreateIAMUser(t, "keyturn-worker-"+strconv.Itoa(i+1), p)
		cfg := srv.AWSConfig(t.Context())
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
		out[i] = cfg
	}
	return out
}

func storeAs(t *testing.T, cfg aws.Config) *Store {
	t.Helper()
	s, err := NewFromConfig(cfg, Config{NamePrefix: policyPrefix})
	if err != nil {
		t.Fatalf("NewFromConfig: %v", err)
	}
	return s
}

// TestConformanceWithOnlyThePolicyActions runs the conformance suite as an IAM principal
// holding only iam-policy.json's actions: they are enough for every Store method the
// suite calls. A call outside them is then refused, which shows IAM was enforced
// throughout.
func TestConformanceWithOnlyThePolicyActions(t *testing.T) {
	cfg := principals(t, mototest.AllowActions(policyActions(t)...))[0]
	s := storeAs(t, cfg)
	storetest.Run(t, func(t *testing.T) stores.Store { return s })

	c := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Fatalf("ListSecrets, which iam-policy.json does not allow: %v, want a 403 refusal", err)
	}
}

// rotateTwice is a secret's first two rotations as the worker's store calls them,
// stopping at the first error.
func rotateTwice(ctx context.Context, s *Store, id secret.ID) error {
	m := func(tag string) secret.Material { return secret.Material{"password": secret.NewSensitive("pw-" + tag)} }
	for _, step := range []func() error{
		func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "v1", Material: m("1")})
			return err
		},
		func() error { return s.Promote(ctx, id, "v1") },
		func() error { _, _, err := s.Read(ctx, id, secret.StageCurrent); return err },
		func() error {
			_, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "v2", Material: m("2")})
			return err
		},
		func() error { _, err := s.ListVersions(ctx, id); return err },
		func() error { return s.Promote(ctx, id, "v2") },
		func() error { _, _, err := s.Read(ctx, id, secret.StagePrevious); return err },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// TestEveryPolicyActionIsNeeded gives one principal all of iam-policy.json's actions and
// one more principal per action with that action left out. The first does two rotations;
// each of the others is refused, and the refusal names the action left out.
func TestEveryPolicyActionIsNeeded(t *testing.T) {
	actions := policyActions(t)
	policies := []string{mototest.AllowActions(actions...)}
	for i := range actions {
		less := append(append([]string{}, actions[:i]...), actions[i+1:]...)
		policies = append(policies, mototest.AllowActions(less...))
	}
	cfgs := principals(t, policies...)

	if err := rotateTwice(t.Context(), storeAs(t, cfgs[0]), uniqueID(t)); err != nil {
		t.Fatalf("with every action: %v", err)
	}
	for i, action := range actions {
		err := rotateTwice(t.Context(), storeAs(t, cfgs[i+1]), uniqueID(t))
		if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), action) {
			t.Errorf("without %s: %v, want a refusal naming it", action, err)
			continue
		}
		t.Logf("without %s: refused as expected", action)
	}
}
