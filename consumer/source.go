package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Value is the current version of a secret as a consumer reads it.
type Value struct {
	// Version identifies what was read: SecretID, Token, Number, CreatedAt and the
	// non-secret Metadata (a user name, say). Version.Stages is as the store reported it.
	Version secret.Version
	// Material holds the secret fields ("password", "key", ...). Each is a
	// secret.Sensitive: it prints [REDACTED] and refuses to marshal; call Reveal where
	// the value is handed to the client that needs it.
	Material secret.Material
	// ReadAt is when the value was read from the store (on the Cache's clock when it
	// comes from a Cache).
	ReadAt time.Time
}

// Field returns one field of the material; the zero Sensitive when it is missing.
func (v Value) Field(name string) secret.Sensitive { return v.Material.Get(name) }

// Source reads the current version of a secret from wherever Keyturn writes it. The
// Cache owns timing and failure handling; a Source only reads. Implementations must not
// put material in their errors.
type Source interface {
	Current(ctx context.Context, id secret.ID) (Value, error)
}

// StoreReader is the read path of a Keyturn store (stores.Store has it): the file store,
// stores/vaultkv and stores/awssm all satisfy it.
type StoreReader interface {
	Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error)
}

// CurrentReader is a store that reads the current version alone, with less access than
// its full read path needs: stores/vaultkv's ReadCurrent reads the consumer path only,
// never the staging prefix where pending material lives. StoreSource uses it when the
// store has it.
type CurrentReader interface {
	ReadCurrent(ctx context.Context, id secret.ID) (secret.Version, secret.Material, error)
}

// StoreSource is a Source over a Keyturn store's own read path, so that a consumer reads
// a version exactly as the rotation engine wrote it.
type StoreSource struct {
	r   StoreReader
	now func() time.Time
}

var _ Source = (*StoreSource)(nil)

// FromStore wraps a store's read path as a Source. Use it when you build the store
// yourself (another Vault auth method, a custom AWS configuration); OpenFile, OpenVault
// and OpenAWS cover the common cases.
func FromStore(r StoreReader) *StoreSource {
	return &StoreSource{r: r, now: time.Now}
}

// Current implements Source: the version holding the current stage, through the store's
// ReadCurrent when it is a CurrentReader. An error wraps the store's
// (errors.Is(err, stores.ErrNotFound) when the secret has no current version).
func (s *StoreSource) Current(ctx context.Context, id secret.ID) (Value, error) {
	if err := id.Validate(); err != nil {
		return Value{}, fmt.Errorf("read current: %w", err)
	}
	var (
		v   secret.Version
		m   secret.Material
		err error
	)
	if cr, ok := s.r.(CurrentReader); ok {
		v, m, err = cr.ReadCurrent(ctx, id)
	} else {
		v, m, err = s.r.Read(ctx, id, secret.StageCurrent)
	}
	if err != nil {
		return Value{}, err
	}
	if len(m) == 0 {
		// Stores never write an empty version; treat one as a broken read rather than
		// hand a consumer an empty password.
		return Value{}, fmt.Errorf("read current %s: version %d has no fields", id, v.Number)
	}
	return Value{Version: v, Material: m, ReadAt: s.now()}, nil
}

// Close releases what the store holds (Vault's token renewal); a no-op for the others.
func (s *StoreSource) Close() error {
	if c, ok := s.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// errNoSource is returned by New for a nil Source.
var errNoSource = errors.New("consumer: no source given")
