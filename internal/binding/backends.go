package binding

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// FieldStore is a store that can also read one field of any secret's current value, for
// the inventory's references (vault:..., awssm:...).
type FieldStore interface {
	stores.Store
	ReadField(ctx context.Context, path, field string) (secret.Sensitive, error)
}

// Backends are the stores this worker can reach. Vault and AWSSM are opened on first use,
// so a worker whose inventory names neither never needs their credentials.
type Backends struct {
	// File is the dev file store; nil when there is none.
	File stores.Store
	// Vault opens a Vault KV v2 store on a mount; nil when this process has no Vault
	// (VAULT_ADDR unset).
	Vault func(ctx context.Context, mount string) (FieldStore, error)
	// AWSSM opens the AWS Secrets Manager store; nil when not configured.
	AWSSM func(ctx context.Context) (FieldStore, error)
	// AWS loads the AWS configuration the awsiam rotator acts with; nil when not
	// configured.
	AWS func(ctx context.Context) (aws.Config, error)
	// CRLDir is where local CA revocation lists with a relative crl_file are written;
	// empty means relative to the worker's working directory.
	CRLDir string
	// TracerProvider gets the spans around every call the rotators make to a target
	// (SQL, AWS, HTTP) and every webhook request; nil traces nothing. The Vault and AWSSM
	// openers above are given it by whoever builds them, for the stores' own calls.
	TracerProvider trace.TracerProvider
}

// openedStores caches the stores opened so far, one per Vault mount and one for AWS.
// A store is opened without holding the cache's lock, so one that hangs (a Vault mount
// that does not answer) holds up only the callers that want that same store.
type openedStores struct {
	mu      sync.Mutex
	stores  map[string]FieldStore
	opening map[string]*opening
}

// opening is one store being opened; done closes when store and err are set.
type opening struct {
	done  chan struct{}
	store FieldStore
	err   error
}

func newOpenedStores() *openedStores {
	return &openedStores{stores: map[string]FieldStore{}, opening: map[string]*opening{}}
}

// get returns the store of key, opening it with open unless it is open or being opened
// (then it waits for that, or for ctx). A failed open is not cached: the next call tries
// again.
func (o *openedStores) get(ctx context.Context, key string, open func(context.Context) (FieldStore, error)) (FieldStore, error) {
	o.mu.Lock()
	if s, ok := o.stores[key]; ok {
		o.mu.Unlock()
		return s, nil
	}
	op, busy := o.opening[key]
	if !busy {
		op = &opening{done: make(chan struct{})}
		o.opening[key] = op
	}
	o.mu.Unlock()
	if busy {
		select {
		case <-op.done:
			return op.store, op.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	op.store, op.err = open(ctx)
	o.mu.Lock()
	delete(o.opening, key)
	if op.err == nil {
		o.stores[key] = op.store
	}
	o.mu.Unlock()
	close(op.done)
	return op.store, op.err
}

func (r *Resolver) vault(ctx context.Context, mount string) (FieldStore, error) {
	if r.backends.Vault == nil {
		return nil, fmt.Errorf("%w: store type vault: this process has no Vault; set VAULT_ADDR and VAULT_TOKEN (or KEYTURN_VAULT_AUTH_METHOD) in its environment", rotators.ErrInvalidConfig)
	}
	if mount == "" {
		mount = "secret"
	}
	return r.opened.get(ctx, "vault:"+mount, func(ctx context.Context) (FieldStore, error) { return r.backends.Vault(ctx, mount) })
}

func (r *Resolver) awssm(ctx context.Context) (FieldStore, error) {
	if r.backends.AWSSM == nil {
		return nil, fmt.Errorf("%w: store type awssm: this process has no AWS configuration", rotators.ErrInvalidConfig)
	}
	return r.opened.get(ctx, "awssm", r.backends.AWSSM)
}

// Close closes the Postgres admin sessions and the stores the resolver opened (Vault
// token renewal, connections), once those being opened are done (their callers'
// contexts bound that).
func (r *Resolver) Close() error {
	r.pgPools.Close()
	r.opened.mu.Lock()
	var busy []*opening
	for _, op := range r.opened.opening {
		busy = append(busy, op)
	}
	r.opened.mu.Unlock()
	for _, op := range busy {
		<-op.done
	}
	r.opened.mu.Lock()
	defer r.opened.mu.Unlock()
	var errs []error
	for _, s := range r.opened.stores {
		if c, ok := s.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	r.opened.stores = map[string]FieldStore{}
	return errors.Join(errs...)
}
