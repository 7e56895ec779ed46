package redisacl

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/rotatortest"
)

// recording wraps a Rotator and remembers every password it generated, so a test can
// check afterwards that none reached the nodes' MONITOR stream, slow log or ACL file.
type recording struct {
	*Rotator
	mu        sync.Mutex
	passwords []string
}

func (r *recording) Generate(ctx context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	g, err := r.Rotator.Generate(ctx, req)
	if err == nil {
		r.mu.Lock()
		r.passwords = append(r.passwords, pw(g.Material))
		r.mu.Unlock()
	}
	return g, err
}

// TestConformance runs the suite on two nodes with the least-privilege admin, watching
// every node with MONITOR and a slow log that records every command.
func TestConformance(t *testing.T) {
	ss := nodes(t)
	watches := make([]*watch, len(ss))
	for i, s := range ss {
		watches[i] = startWatch(t, s)
	}
	var (
		mu   sync.Mutex
		recs []*recording
	)
	rotatortest.Run(t, rotatortest.Harness{
		New: func(t *testing.T) rotators.Rotator {
			rec := &recording{Rotator: mustNew(t, newUser(t))}
			mu.Lock()
			recs = append(recs, rec)
			mu.Unlock()
			return rec
		},
	})
	var all []string
	for _, r := range recs {
		all = append(all, r.passwords...)
	}
	if len(all) < 10 {
		t.Fatalf("the suite generated %d passwords; the check below would prove little", len(all))
	}
	for i, w := range watches {
		w.wantNone(t, all)
		if acl := ss[i].ACLFile(); !strings.Contains(acl, "user "+adminName) {
			t.Errorf("ACL file of %s does not hold the admin: ACL SAVE never ran", ss[i].Addr)
		} else if hasAny(acl, all) {
			t.Errorf("ACL file of %s holds a password in plain text", ss[i].Addr)
		}
	}
}

func hasAny(s string, values []string) bool {
	for _, v := range values {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}
