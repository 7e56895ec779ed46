package consumer

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/rotators/awsiam"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// promoteKey stages an access key as the worker does and promotes it.
func promoteKey(t *testing.T, st stores.Store, id secret.ID, token string, key aws.Credentials) {
	t.Helper()
	_, err := st.StagePending(t.Context(), stores.StageRequest{
		SecretID: id,
		Token:    secret.VersionToken(token),
		Material: secret.Material{
			FieldAccessKeyID:     secret.NewSensitive(key.AccessKeyID),
			FieldSecretAccessKey: secret.NewSensitive(key.SecretAccessKey),
		},
		Metadata: map[string]string{"access_key_id": key.AccessKeyID},
	})
	if err != nil {
		t.Fatalf("StagePending %s: %v", token, err)
	}
	if err := st.Promote(t.Context(), id, secret.VersionToken(token)); err != nil {
		t.Fatalf("Promote %s: %v", token, err)
	}
}

func TestAWSCredentialsSignWithTheCurrentKey(t *testing.T) {
	srv := mototest.Start(t)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(src, Options{TTL: time.Hour, Jitter: -1})
	if err != nil {
		t.Fatal(err)
	}
	const id = secret.ID("prod/billing/aws")
	first := srv.CreateIAMUser(t, "billing-app")
	promoteKey(t, st, id, "v1", first)

	prov := NewAWSCredentials(c, id)
	creds := aws.NewCredentialsCache(prov)
	cfg := srv.AWSConfig(t.Context())
	cfg.Credentials = creds
	client := sts.NewFromConfig(cfg)
	whoami := func() string {
		t.Helper()
		out, err := client.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
		return aws.ToString(out.Arn)
	}

	if arn := whoami(); !strings.HasSuffix(arn, ":user/billing-app") {
		t.Fatalf("signed as %s, want the stored key's user billing-app", arn)
	}
	got, err := creds.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CanExpire || !got.Expires.Equal(v.ReadAt.Add(time.Hour)) {
		t.Fatalf("credentials expire at %v (can expire: %v), want the cache's expiry %v",
			got.Expires, got.CanExpire, v.ReadAt.Add(time.Hour))
	}
	if got.AccessKeyID != first.AccessKeyID {
		t.Fatal("Retrieve returned another access key than the stored one")
	}

	// A rotation promotes another key. Both caches keep the first until they are told
	// (or the TTL passes); then the SDK signs with the new key.
	second := srv.CreateIAMUser(t, "billing-app-next")
	promoteKey(t, st, id, "v2", second)
	if arn := whoami(); !strings.HasSuffix(arn, ":user/billing-app") {
		t.Fatalf("within the TTL signed as %s, want the cached key", arn)
	}
	prov.Invalidate()
	creds.Invalidate()
	if arn := whoami(); !strings.HasSuffix(arn, ":user/billing-app-next") {
		t.Fatalf("after Invalidate signed as %s, want the promoted key's user", arn)
	}
}

func TestAWSCredentialsRefuseAVersionWithoutAKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const id = secret.ID("prod/billing/aws")
	pw := canary(t)
	rotateTo(t, st, id, "v1", pw) // a password, not a key pair
	_, err = NewAWSCredentials(c, id).Retrieve(t.Context())
	if err == nil || !strings.Contains(err.Error(), FieldAccessKeyID) {
		t.Fatalf("Retrieve of a password secret = %v, want an error naming the missing field", err)
	}
	if strings.Contains(fmt.Sprintf("%+v", err), pw) {
		t.Fatal("the error holds material")
	}
}

func TestAWSFieldNamesMatchTheIAMRotator(t *testing.T) {
	if FieldAccessKeyID != awsiam.FieldAccessKeyID || FieldSecretAccessKey != awsiam.FieldSecretAccessKey {
		t.Fatal("consumer's access key field names differ from rotators/awsiam's")
	}
}
