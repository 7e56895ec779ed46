package awsiam

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyturn/keyturn/rotators"
)

func adminConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "example", "")}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		aws  aws.Config
		want []string
	}{
		"no user":        {Config{}, adminConfig(), []string{"user is empty", "awsiam.user"}},
		"user as ARN":    {Config{UserName: "arn:aws:iam::123456789012:user/app"}, adminConfig(), []string{"not an IAM user name", "not an ARN"}},
		"user too long":  {Config{UserName: strings.Repeat("a", 65)}, adminConfig(), []string{"not an IAM user name"}},
		"negative purge": {Config{UserName: "app", DeleteAfter: -time.Hour}, adminConfig(), []string{"delete_after", "negative"}},
		"huge timeout":   {Config{UserName: "app", ConsistencyTimeout: time.Hour}, adminConfig(), []string{"consistency_timeout", "5m0s"}},
		"negative timeout": {Config{UserName: "app", ConsistencyTimeout: -time.Second}, adminConfig(),
			[]string{"consistency_timeout"}},
		"every problem at once": {Config{DeleteAfter: -1, ConsistencyTimeout: -1}, adminConfig(),
			[]string{"user is empty", "delete_after", "consistency_timeout"}},
		"no region":      {Config{UserName: "app"}, aws.Config{Credentials: adminConfig().Credentials}, []string{"no region", "AWS_REGION"}},
		"no credentials": {Config{UserName: "app"}, aws.Config{Region: "us-east-1"}, []string{"no credentials", "iam-policy.json"}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := New(tc.cfg, tc.aws)
			if r != nil || !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidConfig", r, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	r, err := New(Config{UserName: "team.app+ci@example", DeleteAfter: 72 * time.Hour}, adminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.ConsistencyTimeout != DefaultConsistencyTimeout {
		t.Errorf("ConsistencyTimeout = %s, want %s", r.cfg.ConsistencyTimeout, DefaultConsistencyTimeout)
	}
	if r.PurgeAfter() != 72*time.Hour {
		t.Errorf("PurgeAfter = %s, want DeleteAfter", r.PurgeAfter())
	}
	if r, _ := New(Config{UserName: "app"}, adminConfig()); r.PurgeAfter() != 0 {
		t.Errorf("PurgeAfter without DeleteAfter = %s, want 0 (purge right after revoke)", r.PurgeAfter())
	}
}
