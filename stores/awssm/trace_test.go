package awssm

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/internal/harness/spantest"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/telemetry/awsspans"
)

// TestSpans: with a tracer provider, each Secrets Manager call the store makes to moto
// is a client span under the caller's, with rpc.system.name aws-api, the operation, the
// region, the endpoint, the status and the request ID (the store's first look for the
// secret is answered 404, a failed span with its code); no span holds the SecretString
// or the AWS credentials. A read of a secret that does not exist is a failed span that
// says ResourceNotFoundException and nothing more.
func TestSpans(t *testing.T) {
	srv := mototest.Need(t, moto)
	rec := spantest.New(t)
	awsCfg := srv.AWSConfig(t.Context())
	s, err := NewFromConfig(awsCfg, Config{NamePrefix: testPrefix, TracerProvider: rec.Provider})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := rec.Parent(t.Context())
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	id := secret.ID("spans/traced")
	const material = "awssm-span-canary-8d41"
	v, err := s.StagePending(ctx, stores.StageRequest{SecretID: id, Token: "t1", Material: secret.Material{"password": secret.NewSensitive(material)}, Metadata: map[string]string{"role": "app_a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, id, v.Token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read(ctx, id, secret.StageCurrent); err != nil {
		t.Fatal(err)
	}
	spans := rec.Scope(awsspans.ScopeName)
	spantest.WantChildren(t, spans, parent)
	methods := map[string]bool{}
	for _, sp := range spans {
		a := spantest.Attrs(sp)
		methods[a["rpc.method"]] = true
		if a["rpc.system.name"] != "aws-api" || sp.Name != a["rpc.method"] || !strings.HasPrefix(a["rpc.method"], "Secrets Manager/") ||
			a["cloud.region"] != awsCfg.Region || a["server.address"] != u.Hostname() || a["server.port"] != u.Port() ||
			a["aws.request_id"] == "" || (a["http.response.status_code"] == "200") != (a["error.type"] == "") {
			t.Errorf("span %s: %v", sp.Name, a)
		}
	}
	for _, m := range []string{"Secrets Manager/CreateSecret", "Secrets Manager/GetSecretValue", "Secrets Manager/UpdateSecretVersionStage"} {
		if !methods[m] {
			t.Errorf("no span for %s; spans: %v", m, methods)
		}
	}

	rec.Reset()
	if _, _, err := s.Read(ctx, "spans/never-written", secret.StageCurrent); err == nil {
		t.Fatal("a read of a secret never written passed")
	}
	failed := rec.Scope(awsspans.ScopeName)
	if len(failed) == 0 || failed[0].Status.Code != codes.Error || failed[0].Status.Description != "ResourceNotFoundException" ||
		spantest.Attrs(failed[0])["error.type"] != "ResourceNotFoundException" {
		t.Errorf("want a failed span that says ResourceNotFoundException alone:\n%s", spantest.Dump(failed))
	}
	creds, err := awsCfg.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	spantest.WantNoneOf(t, rec.Spans(), material, creds.SecretAccessKey)
}

// TestSpansOfAnInstrumentedConfig: a store built with a tracer provider from a
// configuration already instrumented (awsspans.Instrument, as the binding does for the
// awsiam rotator) works, and traces each call once.
func TestSpansOfAnInstrumentedConfig(t *testing.T) {
	srv := mototest.Need(t, moto)
	rec := spantest.New(t)
	awsCfg := srv.AWSConfig(t.Context())
	awsspans.Instrument(&awsCfg, rec.Provider)
	s, err := NewFromConfig(awsCfg, Config{NamePrefix: testPrefix, TracerProvider: rec.Provider})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Read(t.Context(), "spans/instrumented-never-written", secret.StageCurrent)
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("want not found from moto, got %v", err)
	}
	if spans := rec.Scope(awsspans.ScopeName); len(spans) != 1 {
		t.Errorf("want one span for the one call, got:\n%s", spantest.Dump(spans))
	}
}
