package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/rotators"
)

// applicationName marks Keyturn's sessions in pg_stat_activity and the server log.
const applicationName = "keyturn"

// closeTimeout bounds the goodbye message on close, which may follow a cancelled context.
const closeTimeout = 5 * time.Second

// connSettings is the connection string of r's target: only the non-secret settings go
// through it. The user and the password are set on the parsed config (login), so no
// string that could reach an error message or a log ever holds the password.
func (r *Rotator) connSettings() string {
	settings := []string{
		"host=" + connValue(r.cfg.Host),
		"port=" + strconv.Itoa(r.cfg.Port),
		"dbname=" + connValue(r.cfg.Database),
		"sslmode=" + connValue(r.cfg.SSLMode),
	}
	if r.cfg.SSLRootCert != "" {
		settings = append(settings, "sslrootcert="+connValue(r.cfg.SSLRootCert))
	}
	return strings.Join(settings, " ")
}

// login completes a parsed config for one login: who, with what password, and how
// Keyturn's sessions are named, bounded and traced.
func (r *Rotator) login(cfg *pgx.ConnConfig, user, password string) {
	cfg.User = user
	cfg.Password = password
	cfg.ConnectTimeout = r.cfg.ConnectTimeout
	cfg.RuntimeParams["application_name"] = applicationName
	if r.tracer != nil { // a nil *Tracer in the interface would look like a tracer
		cfg.Tracer = r.tracer
	}
	if r.onNotice != nil {
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { r.onNotice(n) }
	}
}

// connConfig builds the connection settings for one login.
func (r *Rotator) connConfig(user, password string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(r.connSettings())
	if err != nil {
		return nil, fmt.Errorf("postgres: %w: connection settings: %w", rotators.ErrInvalidConfig, err)
	}
	r.login(cfg, user, password)
	return cfg, nil
}

// connValue quotes a value for a key=value connection string.
func connValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, `'`, `\'`) + "'"
}

// connect logs in as user. Errors are returned as the driver made them, for the caller to
// classify; they name the user and the database, never the password.
func (r *Rotator) connect(ctx context.Context, user, password string) (*pgx.Conn, error) {
	cfg, err := r.connConfig(user, password)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// connectAdmin gives an admin session: from the worker's pool of the target when the
// rotator has Pools, else a new login that release closes. A refused admin login is
// final: Keyturn cannot fix it by retrying, so it wraps ErrPermissionDenied.
func (r *Rotator) connectAdmin(ctx context.Context) (adminSession, error) {
	password := r.cfg.AdminPassword.Reveal()
	var session adminSession
	var err error
	if r.cfg.Pools != nil && r.onNotice == nil { // a test watching notices wants its own sessions
		var pooled *pgxpool.Conn
		if pooled, err = r.cfg.Pools.acquire(ctx, r, password); err == nil {
			session = adminSession{Conn: pooled.Conn(), release: pooled.Release}
		}
	} else {
		var conn *pgx.Conn
		if conn, err = r.connect(ctx, r.cfg.AdminUser, password); err == nil {
			session = adminSession{Conn: conn, release: func() { closeConn(ctx, conn) }}
		}
	}
	if err == nil {
		return session, nil
	}
	if loginRefused(err) {
		return adminSession{}, fmt.Errorf("connect as admin %q: %w: %w", r.cfg.AdminUser, rotators.ErrPermissionDenied, sanitize(err, password))
	}
	return adminSession{}, fail(fmt.Sprintf("connect as admin %q", r.cfg.AdminUser), err, password)
}

// closeConn closes conn, bounding the wait even when ctx is already cancelled.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// rollback ends a transaction that was not committed; after Commit it does nothing.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// ident quotes a role name as an SQL identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
