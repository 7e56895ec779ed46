package awssm

import (
	"os"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/mototest"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/storetest"
)

// moto is the package's shared server; tests that need one of their own (to stop it)
// start it with mototest.Start.
var moto *mototest.Server

func TestMain(m *testing.M) { os.Exit(mototest.Main(m, &moto)) }

// testPrefix keeps test secrets under one name prefix, as a deployment would.
const testPrefix = "keyturn-test/"

// newTestStore returns a store on the shared moto server.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	srv := mototest.Need(t, moto)
	s, err := NewFromConfig(srv.AWSConfig(t.Context()), Config{NamePrefix: testPrefix})
	if err != nil {
		t.Fatalf("NewFromConfig: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Store { return newTestStore(t) })
}
