package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/awssm"
)

// TestAWSSecretsManagerFromTheStandardChain runs the agent on AWS Secrets Manager (moto)
// configured as docs/agent.md says: name_prefix and region in the file, credentials and
// endpoint from the environment through the standard AWS chain.
func TestAWSSecretsManagerFromTheStandardChain(t *testing.T) {
	srv := mototest.Start(t)
	const prefix = "keyturn/"
	st, err := awssm.NewFromConfig(srv.AWSConfig(t.Context()), awssm.Config{NamePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const id = secret.ID("prod/orders-db/app")
	first, second := canary(t), canary(t)
	promote(t, st, id, "v1", first)

	dir := t.TempDir()
	// Only this test's settings reach the SDK: no profile or shared file of the machine.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.Endpoint, "AWS_ACCESS_KEY_ID": mototest.AccessKeyID, "AWS_SECRET_ACCESS_KEY": mototest.SecretAccessKey,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
	} {
		t.Setenv(k, v)
	}
	dest := filepath.Join(dir, "db.env")
	cfg, err := Parse(filepath.Join(dir, "agent.yaml"), []byte("store: {type: awssm, name_prefix: "+prefix+", region: "+mototest.Region+"}\ntemplates:\n  - {secret: "+string(id)+", destination: "+dest+", format: env}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(t.Context(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r := a.Pass(ctx); len(r.Written) != 1 || r.Failed != 0 {
		t.Fatalf("first pass = %+v", r)
	}
	if got := readFile(t, dest); got != "PASSWORD="+first+"\nUSERNAME=app\n" {
		t.Fatal("db.env does not hold version 1")
	}
	promote(t, st, id, "v2", second)
	if r := a.Pass(ctx); len(r.Written) != 1 || r.Failed != 0 {
		t.Fatalf("pass after the promotion = %+v", r)
	}
	if !strings.Contains(readFile(t, dest), "PASSWORD="+second+"\n") {
		t.Fatal("db.env does not hold version 2")
	}
}
