package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/rotators"
)

// applicationName marks Keyturn's sessions in pg_stat_activity and the server log.
const applicationName = "keyturn"

// closeTimeout bounds the goodbye message on close, which may follow a cancelled context.
const closeTimeout = 5 * time.Second

// connConfig builds the connection settings for one login. Only the non-secret settings go
// through a connection string; the user and the password are set on the parsed config, so
// no string that could reach an error message or a log ever holds the password.
func (r *Rotator) connConfig(user, password string) (*pgx.ConnConfig, error) {
	settings := []string{
		"host=" + connValue(r.cfg.Host),
		"port=" + strconv.Itoa(r.cfg.Port),
		"dbname=" + connValue(r.cfg.Database),
		"sslmode=" + connValue(r.cfg.SSLMode),
	}
	if r.cfg.SSLRootCert != "" {
		settings = append(settings, "sslrootcert="+connValue(r.cfg.SSLRootCert))
	}
	cfg, err := pgx.ParseConfig(strings.Join(settings, " "))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w: connection settings: %w", rotators.ErrInvalidConfig, err)
	}
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

// connectAdmin logs in with the admin credential. A refused admin login is final: Keyturn
// cannot fix it by retrying, so it wraps ErrPermissionDenied.
func (r *Rotator) connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	password := r.cfg.AdminPassword.Reveal()
	conn, err := r.connect(ctx, r.cfg.AdminUser, password)
	if err == nil {
		return conn, nil
	}
	if loginRefused(err) {
		return nil, fmt.Errorf("connect as admin %q: %w: %w", r.cfg.AdminUser, rotators.ErrPermissionDenied, sanitize(err, password))
	}
	return nil, fail(fmt.Sprintf("connect as admin %q", r.cfg.AdminUser), err, password)
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
