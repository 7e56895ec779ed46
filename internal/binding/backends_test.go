package binding

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

const twoMounts = `version: 1
secrets:
  - id: slow/app
    kind: postgres
    store: {type: vault, mount: slow}
    postgres: {host: localhost, sslmode: disable, database: d, role: a, admin: {username: k, password: "env:PW"}}
  - id: fast/app
    kind: postgres
    store: {type: vault, mount: fast}
    postgres: {host: localhost, sslmode: disable, database: d, role: b, admin: {username: k, password: "env:PW"}}
`

// TestHangingStoreBlocksOnlyItself: while a Vault mount's store hangs opening, another
// mount's store opens; callers of the hanging one wait for that one open (not one each),
// and give up with their own context; a failed open is tried again next time.
func TestHangingStoreBlocksOnlyItself(t *testing.T) {
	inv, err := inventory.Parse("inventory.yaml", []byte(twoMounts))
	if err != nil {
		t.Fatal(err)
	}
	inv.ApplyDefaults()
	fast, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var slowOpens atomic.Int32
	r := New(inv, Backends{Vault: func(ctx context.Context, mount string) (FieldStore, error) {
		if mount == "slow" {
			slowOpens.Add(1)
			<-release
			return nil, errors.New("slow mount: no answer")
		}
		return fileFieldStore{fast}, nil
	}})
	first := make(chan error, 1)
	go func() { _, err := r.Store(context.Background(), "slow/app"); first <- err }()
	for slowOpens.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Store(ctx, "fast/app"); err != nil {
		t.Fatalf("the fast mount's store must open while the slow one hangs: %v", err)
	}
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if _, err := r.Store(short, "slow/app"); !errors.Is(err, context.Canceled) {
		t.Errorf("a second caller of the hanging store gives up with its context: %v", err)
	}
	close(release)
	if err := <-first; err == nil {
		t.Error("the slow open failed, yet Store returned no error")
	}
	if _, err := r.Store(ctx, "slow/app"); err == nil || slowOpens.Load() != 2 {
		t.Errorf("a failed open is tried again: %v, %d opens", err, slowOpens.Load())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileFieldStore is a file store as a FieldStore, for the test's fast mount.
type fileFieldStore struct{ *file.Store }

func (fileFieldStore) ReadField(context.Context, string, string) (secret.Sensitive, error) {
	return secret.Sensitive{}, errors.New("not used")
}
