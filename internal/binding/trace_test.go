package binding

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/telemetry/awsspans"
)

// TestResolvedRotatorsTraceOnTheBackendsProvider: a rotator the resolver builds makes its
// spans on Backends.TracerProvider, under the caller's span: here the IAM user's access
// key is minted and revoked on moto, and every IAM and STS call is a span without the new
// key's secret.
func TestResolvedRotatorsTraceOnTheBackendsProvider(t *testing.T) {
	moto := mototest.Start(t)
	moto.CreateIAMUser(t, "traced-user")
	inv, err := inventory.Parse("inventory.yaml", []byte(`version: 1
secrets:
  - id: prod/aws/traced
    kind: awsiam
    grace: 0s
    awsiam:
      user: traced-user
      delete_after: 0s
      consistency_timeout: 10s
`))
	if err != nil {
		t.Fatal(err)
	}
	inv.ApplyDefaults()
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := spantest.New(t)
	r := New(inv, Backends{
		File:           store,
		AWS:            func(ctx context.Context) (aws.Config, error) { return moto.AWSConfig(ctx), nil },
		TracerProvider: rec.Provider,
	})
	ctx, parent := rec.Parent(t.Context())
	b, err := r.Resolve(ctx, "prod/aws/traced")
	if err != nil {
		t.Fatal(err)
	}
	minter, ok := b.Steps.Rotator.(rotators.Minter)
	if !ok {
		t.Fatalf("the awsiam rotator %T does not mint", b.Steps.Rotator)
	}
	g, err := minter.Mint(ctx, rotators.MintRequest{SecretID: "prod/aws/traced", Token: "t1", Minted: func(map[string]string) {}})
	if err != nil {
		t.Fatal(err)
	}
	spans := rec.Scope(awsspans.ScopeName)
	spantest.WantChildren(t, spans, parent)
	var methods []string
	for _, s := range spans {
		methods = append(methods, spantest.Attrs(s)["rpc.method"])
	}
	if !strings.Contains(strings.Join(methods, " "), "IAM/CreateAccessKey") {
		t.Errorf("no IAM/CreateAccessKey span; spans: %v", methods)
	}
	for _, m := range g.Material {
		spantest.WantNoneOf(t, rec.Spans(), m.Reveal())
	}
	spantest.WantNoneOf(t, rec.Spans(), mototest.SecretAccessKey)
}
