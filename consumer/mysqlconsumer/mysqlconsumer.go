// Package mysqlconsumer logs database/sql connections in to MariaDB (or MySQL) with an
// account Keyturn rotates (kind mariadb), read through a consumer.Cache, using the
// go-sql-driver/mysql driver.
//
// It is a package of its own so that consumer does not make every application import a
// MySQL driver.
//
// Every new connection takes the cache's current value: the password (field "password")
// and the user (metadata "username"): the alternating strategy switches between two twin
// accounts, so the user changes with the version and must come from the secret. When the
// server refuses the login (1045, access denied; or the account is locked, which is how
// Keyturn revokes), the cached value is older than the server: the secret is invalidated
// in the cache and the connect is tried once more with a fresh read. No statement was
// sent, so the retry is always safe.
//
// Set sql.DB.SetConnMaxLifetime shorter than the rotation's grace period, so every
// pooled connection has been reopened with the new version before the old one is
// revoked; a revoke with terminate_sessions, or an incident, ends the old account's
// connections.
package mysqlconsumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

// The field and metadata key rotators/mariadb writes (copied, not imported, to keep the
// rotator out of consumers' binaries; a test checks they match).
const (
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
	// MetadataUsername is the metadata key naming the account to log in as.
	MetadataUsername = "username"
)

// Refusals of a login that a fresh read may cure.
const (
	errAccessDenied       = 1045 // ER_ACCESS_DENIED_ERROR
	errAccountLocked      = 4151 // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
	errAccountLockedMySQL = 3118 // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
)

// Options tune a Connector. The zero value is ready to use.
type Options struct {
	// OnRetry, when set, is called each time a refused login is retried after
	// invalidating the secret. Count it as a metric: steady retries mean the cache's TTL
	// is longer than the rotation's grace period.
	OnRetry func(id secret.ID, err error)
}

// Connector is a driver.Connector whose connections log in with a secret's current
// account. Use it with sql.OpenDB. It is safe for concurrent use.
type Connector struct {
	cfg   *mysql.Config
	cache *consumer.Cache
	id    secret.ID
	opts  Options
}

var _ driver.Connector = (*Connector)(nil)

// NewConnector returns a Connector for the server cfg describes (address, TLS, database,
// timeouts), logging in with secret id read through cache. cfg's User and Passwd are
// ignored; cfg is copied.
func NewConnector(cfg *mysql.Config, cache *consumer.Cache, id secret.ID, opts Options) (*Connector, error) {
	c := cfg.Clone()
	if _, err := mysql.NewConnector(c); err != nil {
		return nil, err
	}
	return &Connector{cfg: c, cache: cache, id: id, opts: opts}, nil
}

// Connect opens a connection with the secret's current account, retrying once with a
// fresh read when the login is refused.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.connect(ctx)
	if !refused(err) {
		return conn, err
	}
	c.cache.Invalidate(c.id)
	if c.opts.OnRetry != nil {
		c.opts.OnRetry(c.id, err)
	}
	conn, err = c.connect(ctx)
	if refused(err) {
		return nil, fmt.Errorf("the server refused the account of secret %s, read fresh from the store after a first refusal: %w", c.id, err)
	}
	return conn, err
}

func (c *Connector) connect(ctx context.Context) (driver.Conn, error) {
	v, err := c.cache.Get(ctx, c.id)
	if err != nil {
		return nil, fmt.Errorf("mysql login from secret: %w", err)
	}
	password := v.Field(FieldPassword).Reveal()
	if password == "" {
		return nil, fmt.Errorf("mysql login from secret %s: version %d has no %q field", c.id, v.Version.Number, FieldPassword)
	}
	cfg := c.cfg.Clone()
	cfg.User, cfg.Passwd = v.Version.Metadata[MetadataUsername], password
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return connector.Connect(ctx)
}

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver { return &mysql.MySQLDriver{} }

// refused reports whether err is the server refusing the login.
func refused(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case errAccessDenied, errAccountLocked, errAccountLockedMySQL:
		return true
	}
	return false
}
