package httpapi_test

import (
	"sync"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/httpapi/apitest"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// harness gives each subtest an API server of its own, over HTTP or, with tls, over
// HTTPS through Config.Client. After each rotation round exactly one key is live: the new
// version's.
func harness(name string, tls bool) rotatortest.Harness {
	var (
		mu      sync.Mutex
		servers = map[*testing.T]*apitest.Server{}
	)
	return rotatortest.Harness{
		Name:         name,
		PublicFields: []string{httpapi.FieldKeyID},
		New: func(t *testing.T) rotators.Rotator {
			start := apitest.Start
			if tls {
				start = apitest.StartTLS
			}
			s := start(t)
			cfg := exampleConfig(s)
			if tls {
				cfg.Client = s.Client()
			}
			mu.Lock()
			servers[t] = s
			mu.Unlock()
			return mustNew(t, cfg)
		},
		AfterRotation: func(t *testing.T, prev, next secret.Version) {
			mu.Lock()
			s := servers[t]
			mu.Unlock()
			if s.Live(prev.Metadata[httpapi.MetadataKeyID]) || !s.Live(next.Metadata[httpapi.MetadataKeyID]) || s.Count() != 1 {
				t.Errorf("after a round: previous key live %v, next key live %v, %d keys live; want only the next key",
					s.Live(prev.Metadata[httpapi.MetadataKeyID]), s.Live(next.Metadata[httpapi.MetadataKeyID]), s.Count())
			}
		},
	}
}

func TestConformance(t *testing.T) {
	rotatortest.Run(t, harness("http", false))
	rotatortest.Run(t, harness("https", true))
}

func mustNew(t testing.TB, cfg httpapi.Config) *httpapi.Rotator {
	t.Helper()
	r, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}
