package awssm

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func TestVersionIDIsAValidStableClientRequestToken(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9-]{32,64}$`)
	tokens := []secret.VersionToken{"v1", "rotate/prod/orders-db/app/0d6f3c1e-5a8b-4f0e-9c1d-2b3a4c5d6e7f", secret.VersionToken(strings.Repeat("x", secret.MaxTokenLen))}
	seen := map[string]bool{placeholderVersionID: true}
	for _, tok := range tokens {
		id := VersionID(tok)
		if !valid.MatchString(id) {
			t.Fatalf("VersionID(%q) = %q is not a valid ClientRequestToken", tok, id)
		}
		if VersionID(tok) != id {
			t.Fatalf("VersionID(%q) is not stable", tok)
		}
		if seen[id] {
			t.Fatalf("VersionID(%q) collides", tok)
		}
		seen[id] = true
	}
	if got := VersionID(ForeignTokenPrefix + "abc"); got != "abc" {
		t.Fatalf("a foreign token maps to %q, want its VersionId", got)
	}
}

func TestCheckStageRefusesCollidingAndReservedNames(t *testing.T) {
	m := secret.Material{"password": secret.NewSensitive("x")}
	for name, tc := range map[string]struct {
		token secret.VersionToken
		m     secret.Material
		meta  map[string]string
	}{
		"empty token":           {token: "", m: m},
		"foreign token":         {token: ForeignTokenPrefix + "abc", m: m},
		"control character":     {token: "a\x00b", m: m},
		"no material":           {token: "v1"},
		"reserved field":        {token: "v1", m: secret.Material{BookkeepingKey: secret.NewSensitive("x")}},
		"reserved metadata":     {token: "v1", m: m, meta: map[string]string{BookkeepingKey: "x"}},
		"field is also meta":    {token: "v1", m: m, meta: map[string]string{"password": "x"}},
		"empty field name":      {token: "v1", m: secret.Material{"": secret.NewSensitive("x")}},
		"empty metadata name":   {token: "v1", m: m, meta: map[string]string{"": "x"}},
		"token over the limit":  {token: secret.VersionToken(strings.Repeat("x", secret.MaxTokenLen+1)), m: m},
		"token not valid UTF-8": {token: "\xff", m: m},
	} {
		if err := checkStage(tc.token, tc.m, tc.meta); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := checkStage("v1", m, map[string]string{"username": "app"}); err != nil {
		t.Fatalf("a good request: %v", err)
	}
}

func TestValueRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	bk := bookkeeping{Format: formatVersion, Token: "v1", Number: 4, CreatedAt: at, Metadata: map[string]string{"username": "app"}}
	value, err := encodeValue(bk, secret.Material{"password": secret.NewSensitive("pw")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeValue(value)
	if err != nil {
		t.Fatal(err)
	}
	v := d.version("a/b", "vid", time.Time{}, []string{LabelPending, "CUSTOM"})
	if v.Token != "v1" || v.Number != 4 || !v.CreatedAt.Equal(at) || v.Metadata["username"] != "app" {
		t.Fatalf("decoded %+v", v)
	}
	if len(v.Stages) != 1 || v.Stages[0] != secret.StagePending {
		t.Fatalf("stages %v: labels of other tools must be ignored", v.Stages)
	}
	m := d.material()
	if len(m) != 1 || m["password"].Reveal() != "pw" {
		t.Fatalf("material has fields %d", len(m))
	}

	ph, err := decodeValue(placeholderValue)
	if err != nil || !ph.bk.Placeholder || ph.foreign() {
		t.Fatalf("placeholder decodes as %+v (err %v)", ph.bk, err)
	}
}

func TestDecodeRefusesWithoutQuotingTheValue(t *testing.T) {
	for _, value := range []string{"plain-password-value", `["a"]`, `{"keyturn": "x"}`, `{"keyturn": {"format": 99}}`} {
		_, err := decodeValue(value)
		if err == nil {
			t.Fatalf("decodeValue(%q) succeeded", value)
		}
		if strings.Contains(err.Error(), "plain-password") {
			t.Fatalf("error quotes the value: %v", err)
		}
	}
}

func TestNewFromConfigChecks(t *testing.T) {
	if _, err := NewFromConfig(aws.Config{}, Config{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("no region: %v", err)
	}
	if _, err := NewFromConfig(aws.Config{Region: "us-east-1"}, Config{NamePrefix: "bad prefix!"}); err == nil {
		t.Fatal("a prefix with a space was accepted")
	}
	s, err := NewFromConfig(aws.Config{}, Config{Region: "eu-west-1", NamePrefix: "keyturn/"})
	if err != nil {
		t.Fatal(err)
	}
	if name, err := s.SecretName("prod/orders-db/app"); err != nil || name != "keyturn/prod/orders-db/app" {
		t.Fatalf("SecretName = %q, %v", name, err)
	}
	if _, err := s.SecretName("../etc"); err == nil {
		t.Fatal("an invalid ID got a name")
	}
}

// TestNewUsesTheStandardChain builds the store as the worker does, from the environment
// only: credentials, region and AWS_ENDPOINT_URL.
func TestNewUsesTheStandardChain(t *testing.T) {
	srv := mototest.Need(t, moto)
	t.Setenv("AWS_ACCESS_KEY_ID", mototest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", mototest.SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	s, err := New(ctx, Config{NamePrefix: testPrefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	id := uniqueID(t)
	mustStage(t, s, id, "v1", pw(t), nil)
	mustPromote(t, s, id, "v1")

	// Config.Endpoint wins over AWS_ENDPOINT_URL.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	s, err = New(ctx, Config{NamePrefix: testPrefix, Endpoint: srv.Endpoint, Region: "us-east-1"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, _, err := s.Read(ctx, id, secret.StageCurrent); err != nil {
		t.Fatalf("Read through Config.Endpoint: %v", err)
	}

	// A profile that does not exist is a configuration error, reported at once.
	if _, err := New(ctx, Config{Profile: "no-such-profile"}); err == nil {
		t.Fatal("New with a missing profile succeeded")
	} else if errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("a missing profile reads as ErrNotFound: %v", err)
	}
}
