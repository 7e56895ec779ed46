package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/rotators"
)

// Pool sizes and idle limits. A SCRAM login costs the server and the worker several
// milliseconds of CPU each, and an incident revokes two or three versions per secret,
// each after listing its sessions: reusing the admin's sessions is most of what makes
// containing a thousand roles take seconds rather than tens of seconds.
const (
	// DefaultPoolSize bounds the admin sessions one worker holds on one target. It stays
	// far below a server's default max_connections (100), with room for several workers.
	DefaultPoolSize = 8
	// poolIdleConn is how long an admin session stays open unused. Scheduled rotations are
	// hours apart, so between them a worker holds nothing open on a target.
	poolIdleConn = 30 * time.Second
	// poolIdleDrop is how long a pool stays unused before it is closed and forgotten: one
	// for an admin password that has since changed is never used again.
	poolIdleDrop = 5 * time.Minute
)

// Pools shares admin sessions between the rotators one worker builds, one bounded pool
// per target and admin login. The worker's binding builds a new Rotator for every step;
// given the same Pools, their admin work (Apply, Revoke, InUse) reuses open sessions
// instead of logging in each time. Test still logs in afresh as the version under test:
// that login is the test.
//
// A pool is keyed by the connection settings, the admin user and a digest of the admin
// password, so a changed admin password gets a new pool and the old one closes once
// unused for 5 minutes. Sessions unused for 30 s are closed (within a further 30 s). The
// zero value is not usable: call NewPools.
// A pool traces with the TracerProvider of the rotator that opened it (a worker has one).
type Pools struct {
	size int32

	mu     sync.Mutex
	pools  map[poolKey]*idlePool
	closed bool
}

// poolKey is everything that decides which sessions a rotator's admin logins open.
type poolKey struct {
	host, database, sslMode, sslRootCert, user string
	port                                       int
	password                                   [sha256.Size]byte
	connectTimeout                             time.Duration
}

type idlePool struct {
	pool     *pgxpool.Pool
	lastUsed time.Time
}

// errPoolsClosed is returned by an acquire after Close: the worker is stopping.
var errPoolsClosed = errors.New("postgres: admin connection pools are closed")

// NewPools returns an empty set of pools, each holding at most size sessions (0 means
// DefaultPoolSize).
func NewPools(size int) *Pools {
	if size <= 0 {
		size = DefaultPoolSize
	}
	return &Pools{size: int32(size), pools: map[poolKey]*idlePool{}}
}

// acquire returns an admin session of r's target from its pool, opening the pool on first
// use, and closes pools that have not been used for poolIdleDrop.
func (p *Pools) acquire(ctx context.Context, r *Rotator, password string) (*pgxpool.Conn, error) {
	key := poolKey{
		host: r.cfg.Host, port: r.cfg.Port, database: r.cfg.Database,
		sslMode: r.cfg.SSLMode, sslRootCert: r.cfg.SSLRootCert,
		user: r.cfg.AdminUser, password: sha256.Sum256([]byte(password)),
		connectTimeout: r.cfg.ConnectTimeout,
	}
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolsClosed
	}
	var stale []*pgxpool.Pool
	for k, ip := range p.pools {
		if k != key && now.Sub(ip.lastUsed) > poolIdleDrop {
			stale = append(stale, ip.pool)
			delete(p.pools, k)
		}
	}
	ip, ok := p.pools[key]
	if !ok {
		pool, err := r.newPool(password, p.size)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		ip = &idlePool{pool: pool}
		p.pools[key] = ip
	}
	ip.lastUsed = now
	pool := ip.pool
	p.mu.Unlock()
	for _, s := range stale {
		go s.Close() // waits for sessions in use to be released
	}
	return pool.Acquire(ctx)
}

// Close closes every pool, waiting for the sessions in use to be released. Acquiring
// after Close fails.
func (p *Pools) Close() {
	p.mu.Lock()
	p.closed = true
	pools := p.pools
	p.pools = map[poolKey]*idlePool{}
	p.mu.Unlock()
	for _, ip := range pools {
		ip.pool.Close()
	}
}

// newPool builds (without connecting) a pool of admin sessions with r's settings.
func (r *Rotator) newPool(password string, size int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(r.connSettings())
	if err != nil {
		return nil, fmt.Errorf("postgres: %w: connection settings: %w", rotators.ErrInvalidConfig, err)
	}
	r.login(cfg.ConnConfig, r.cfg.AdminUser, password)
	cfg.MaxConns = size
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = poolIdleConn
	cfg.HealthCheckPeriod = poolIdleConn
	return pgxpool.NewWithConfig(context.Background(), cfg)
}

// adminSession is an admin session and how to give it back: to its pool, or closed when
// the rotator has no pools.
type adminSession struct {
	*pgx.Conn
	release func()
}
