package binding

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestAWSConfigKeptThenReloaded: the AWS configuration is loaded once and reused while it
// is younger than awsConfigTTL, loaded again after (static keys rewritten on disk are
// picked up); a failed load is not kept; a caller waiting behind a slow load gives up
// with its own context.
func TestAWSConfigKeptThenReloaded(t *testing.T) {
	var loads atomic.Int32
	fail := atomic.Bool{}
	release := make(chan struct{})
	slow := atomic.Bool{}
	r := New(nil, Backends{AWS: func(ctx context.Context) (aws.Config, error) {
		loads.Add(1)
		if slow.Load() {
			<-release
		}
		if fail.Load() {
			return aws.Config{}, errors.New("no credentials")
		}
		return aws.Config{Region: "eu-west-1"}, nil
	}})
	ctx := t.Context()
	for range 3 {
		if cfg, err := r.awsConfig(ctx); err != nil || cfg.Region != "eu-west-1" {
			t.Fatalf("awsConfig: %v %v", cfg.Region, err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loaded %d times for three uses within the TTL, want 1", n)
	}

	r.awsLoadedAt = time.Now().Add(-awsConfigTTL) // as if loaded a TTL ago
	fail.Store(true)
	if _, err := r.awsConfig(ctx); err == nil {
		t.Fatal("a failed reload returned no error")
	}
	fail.Store(false)
	if _, err := r.awsConfig(ctx); err != nil || loads.Load() != 3 {
		t.Fatalf("after a failed reload: %v, %d loads (want 3: the failure is not kept)", err, loads.Load())
	}

	r.awsLoadedAt = time.Time{}
	slow.Store(true)
	first := make(chan error, 1)
	go func() { _, err := r.awsConfig(ctx); first <- err }()
	for loads.Load() != 4 {
		time.Sleep(time.Millisecond)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := r.awsConfig(waitCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller behind a slow load: %v, want its own deadline", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the slow load: %v", err)
	}
}
