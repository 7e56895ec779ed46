package consumer

import (
	"testing"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/stores/awssm"
)

func TestAWSSecretsManager(t *testing.T) {
	// A server of its own: the test stops it.
	srv := mototest.Start(t)
	const prefix = "keyturn/"
	st, err := awssm.NewFromConfig(srv.AWSConfig(t.Context()), awssm.Config{NamePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenAWS(srv.AWSConfig(t.Context()), prefix)
	if err != nil {
		t.Fatal(err)
	}
	runStoreCase(t, storeCase{st: st, src: src, id: "prod/orders-db/app", down: srv.Stop})
}
