package awsiam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// moto is the package's shared server, with IAM not enforced: any credential may call
// anything, and STS checks no signature. Tests that need signatures and policies checked
// start their own with startEnforced.
var moto *mototest.Server

func TestMain(m *testing.M) { os.Exit(mototest.Main(m, &moto)) }

var seq atomic.Int64

// uniqueUser returns a user name no other test of this run uses.
func uniqueUser(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// target is one IAM user in moto and the admin configuration that manages it.
type target struct {
	user  string
	admin aws.Config  // what the rotator gets
	setup *iam.Client // a principal allowed everything, for arranging and inspecting
}

// newTarget creates a fresh user on the shared server; the test credentials are both the
// admin and the setup principal.
func newTarget(t *testing.T) target {
	t.Helper()
	srv := mototest.Need(t, moto)
	cfg := srv.AWSConfig(t.Context())
	tg := target{user: uniqueUser("app"), admin: cfg, setup: iamClient(cfg)}
	tg.createUser(t)
	return tg
}

func iamClient(cfg aws.Config) *iam.Client {
	return iam.NewFromConfig(cfg, func(o *iam.Options) { o.RetryMaxAttempts = 1 })
}

func (tg target) createUser(t *testing.T) {
	t.Helper()
	if _, err := tg.setup.CreateUser(t.Context(), &iam.CreateUserInput{UserName: aws.String(tg.user)}); err != nil {
		t.Fatalf("CreateUser %s: %v", tg.user, err)
	}
}

// createKey makes a key for the user outside the rotator, as one made by hand would be.
func (tg target) createKey(t *testing.T, status types.StatusType) string {
	t.Helper()
	out, err := tg.setup.CreateAccessKey(t.Context(), &iam.CreateAccessKeyInput{UserName: aws.String(tg.user)})
	if err != nil {
		t.Fatalf("CreateAccessKey for %s: %v", tg.user, err)
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	if status != types.StatusTypeActive {
		tg.setStatus(t, id, status)
	}
	return id
}

func (tg target) setStatus(t *testing.T, id string, status types.StatusType) {
	t.Helper()
	_, err := tg.setup.UpdateAccessKey(t.Context(), &iam.UpdateAccessKeyInput{
		UserName: aws.String(tg.user), AccessKeyId: aws.String(id), Status: status,
	})
	if err != nil {
		t.Fatalf("UpdateAccessKey %s: %v", id, err)
	}
}

// keys returns the user's keys and their status.
func (tg target) keys(t *testing.T) map[string]types.StatusType {
	t.Helper()
	out, err := tg.setup.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(tg.user)})
	if err != nil {
		t.Fatalf("ListAccessKeys for %s: %v", tg.user, err)
	}
	keys := map[string]types.StatusType{}
	for _, k := range out.AccessKeyMetadata {
		keys[aws.ToString(k.AccessKeyId)] = k.Status
	}
	return keys
}

func (tg target) wantKeys(t *testing.T, want map[string]types.StatusType) {
	t.Helper()
	if got := tg.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys of %s = %v, want %v", tg.user, got, want)
	}
}

// rotator returns a Rotator for the target's user; adjust may change the Config.
func (tg target) rotator(t *testing.T, adjust func(*Config)) *Rotator {
	t.Helper()
	cfg := Config{UserName: tg.user}
	if adjust != nil {
		adjust(&cfg)
	}
	r, err := New(cfg, tg.admin)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// enforced is a moto server that checks signatures and IAM policies, with a setup
// principal allowed everything.
type enforced struct {
	srv   *mototest.Server
	setup aws.Config
}

// allowAll is the setup principal's policy.
const allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

func startEnforced(t *testing.T) enforced {
	t.Helper()
	// CreateIAMUser with one policy makes three calls; IAM is enforced after them.
	srv := mototest.StartWith(t, mototest.Options{Env: map[string]string{"INITIAL_NO_AUTH_ACTION_COUNT": "3"}})
	creds := srv.CreateIAMUser(t, "keyturn-test-setup", allowAll)
	return enforced{srv: srv, setup: withCredentials(srv.AWSConfig(t.Context()), creds.AccessKeyID, creds.SecretAccessKey)}
}

func withCredentials(cfg aws.Config, id, secretKey string) aws.Config {
	cfg = cfg.Copy()
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secretKey, Source: "awsiam-test"}, nil
	})
	return cfg
}

// principal creates an IAM user with one inline policy and a key, and returns a
// configuration that signs as it.
func (e enforced) principal(t *testing.T, name, policy string) aws.Config {
	t.Helper()
	c := iamClient(e.setup)
	ctx := t.Context()
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatalf("CreateUser %s: %v", name, err)
	}
	_, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String(name), PolicyName: aws.String(name + "-policy"), PolicyDocument: aws.String(policy),
	})
	if err != nil {
		t.Fatalf("PutUserPolicy %s: %v", name, err)
	}
	out, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateAccessKey %s: %v", name, err)
	}
	return withCredentials(e.setup, aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey))
}

// target creates a fresh user managed by an admin with the given policy.
func (e enforced) target(t *testing.T, adminPolicy string) target {
	t.Helper()
	tg := target{user: uniqueUser("app"), setup: iamClient(e.setup)}
	tg.createUser(t)
	tg.admin = e.principal(t, uniqueUser("keyturn-admin"), adminPolicy)
	return tg
}

// policyFromFile is iam-policy.json's actions on the resource "*" (see
// mototest.AllowActions for why "*").
func policyFromFile(t *testing.T) string {
	t.Helper()
	return mototest.AllowActions(policyActions(t)...)
}

// policyActions are the actions iam-policy.json allows.
func policyActions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	actions, err := mototest.PolicyActions(data)
	if err != nil {
		t.Fatalf("iam-policy.json: %v", err)
	}
	return actions
}

// onSTS returns an API option that calls fn with every STS request before it is signed
// and sent; added to an admin configuration, it reaches the calls Test signs with the key
// under test, which reuse that configuration.
func onSTS(fn func(*smithyhttp.Request)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("awsiamTestSTS",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok && awsmiddleware.GetServiceID(ctx) == "STS" {
					fn(req)
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
}

// steps drives a rotator by hand, numbering versions as the store would.
type steps struct {
	t *testing.T
	r *Rotator
	n int
}

func (s *steps) mint(current *secret.Version, abandoned ...map[string]string) (secret.Version, secret.Material) {
	s.t.Helper()
	v, m, err := s.tryMint(current, abandoned...)
	if err != nil {
		s.t.Fatalf("Mint: %v", err)
	}
	return v, m
}

func (s *steps) tryMint(current *secret.Version, abandoned ...map[string]string) (secret.Version, secret.Material, error) {
	s.t.Helper()
	s.n++
	token := secret.VersionToken(fmt.Sprintf("test/%d", s.n))
	var minted []map[string]string
	g, err := s.r.Mint(s.t.Context(), rotators.MintRequest{
		SecretID: "test/iam", Token: token, Current: current, Abandoned: abandoned,
		Minted: func(md map[string]string) { minted = append(minted, md) },
	})
	if err != nil {
		if len(minted) > 0 {
			s.t.Errorf("Mint failed but reported minting %v", minted)
		}
		return secret.Version{}, nil, err
	}
	if len(minted) != 1 || !maps.Equal(minted[0], g.Metadata) {
		s.t.Fatalf("Minted got %v, want exactly the metadata %v", minted, g.Metadata)
	}
	return secret.Version{SecretID: "test/iam", Token: token, Number: s.n, CreatedAt: time.Now(), Metadata: g.Metadata}, g.Material, nil
}

func (s *steps) test(v secret.Version, m secret.Material) error {
	return s.r.Test(s.t.Context(), rotators.TestRequest{Version: v, Material: m})
}

func keyID(v secret.Version) string { return v.Metadata[MetadataAccessKeyID] }

// wantErr checks that err wraps want and mentions every string in mentions.
func wantErr(t *testing.T, err, want error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want an error wrapping %v", err, want)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

// wantNoSecret fails if an error shows any of the secret access keys.
func wantNoSecret(t *testing.T, err error, materials ...secret.Material) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, m := range materials {
		if s := m.Get(FieldSecretAccessKey).Reveal(); s != "" && strings.Contains(text, s) {
			t.Errorf("error shows a secret access key: %v", err)
		}
	}
}

// otherAccountSTS makes moto answer STS calls from another account, where the key is
// unknown: moto then names a default caller, arn:aws:sts::<account>:user/moto. It stands
// in for STS vouching for someone other than the user.
func otherAccountSTS(req *smithyhttp.Request) { req.Header.Set("x-moto-account-id", "210987654321") }
