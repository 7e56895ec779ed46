package mariadb

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Server error numbers the rotator gives a meaning to.
const (
	errDBAccessDenied      = 1044 // ER_DBACCESS_DENIED_ERROR
	errAccessDenied        = 1045 // ER_ACCESS_DENIED_ERROR: a refused login
	errHostNotPrivileged   = 1130 // ER_HOST_NOT_PRIVILEGED: no account matches the client's host
	errNoSuchThread        = 1094 // ER_NO_SUCH_THREAD: the connection ended already
	errKillDenied          = 1095 // ER_KILL_DENIED_ERROR: another account's connection, without CONNECTION ADMIN
	errTableAccessDenied   = 1142 // ER_TABLEACCESS_DENIED_ERROR
	errColumnAccessDenied  = 1143 // ER_COLUMNACCESS_DENIED_ERROR
	errSpecificAccess      = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR: a missing privilege
	errCannotUser          = 1396 // ER_CANNOT_USER: e.g. ALTER USER of an account that does not exist
	errProcAccessDenied    = 1370 // ER_PROCACCESS_DENIED_ERROR
	errNoSuchTable         = 1146 // ER_NO_SUCH_TABLE
	errBadField            = 1054 // ER_BAD_FIELD_ERROR
	errParse               = 1064 // ER_PARSE_ERROR
	errNoDatabase          = 1046 // ER_NO_DB_ERROR
	errBadDB               = 1049 // ER_BAD_DB_ERROR
	errSPDoesNotExist      = 1305 // ER_SP_DOES_NOT_EXIST
	errFuncDoesNotExist    = 1630 // ER_FUNC_INEXISTENT_NAME_COLLISION
	errNonUniq             = 1052 // ER_NON_UNIQ_ERROR: an ambiguous column
	errUnknownTable        = 1109 // ER_UNKNOWN_TABLE
	errOperandColumns      = 1241 // ER_OPERAND_COLUMNS
	errSubqueryRows        = 1242 // ER_SUBQUERY_NO_1_ROW
	errWrongParamcount     = 1582 // ER_WRONG_PARAMCOUNT_TO_NATIVE_FCT
	errWrongParameters     = 1583 // ER_WRONG_PARAMETERS_TO_NATIVE_FCT
	errViewInvalid         = 1356 // ER_VIEW_INVALID
	errSignal              = 1644 // ER_SIGNAL_EXCEPTION: a SIGNAL the query raised
	errReadOnlyTransaction = 1792 // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	errAccessDeniedNoPass  = 1698 // ER_ACCESS_DENIED_NO_PASSWORD_ERROR: e.g. GRANT of a role without its admin option
	errInvalidRole         = 1959 // ER_INVALID_ROLE (MariaDB)
	errAccountLockedMySQL  = 3118 // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL)
	errAccountLocked       = 4151 // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
)

// checkRefused reports whether a check query's error number means the query cannot pass
// by retrying: a missing privilege, table or column, bad syntax, or a write in the
// read-only transaction. Anything else (a lock wait, a deadlock, a timeout, a server
// going away) is left for the step's retries.
func checkRefused(n uint16) bool {
	switch n {
	case errDBAccessDenied, errTableAccessDenied, errColumnAccessDenied, errSpecificAccess,
		errReadOnlyTransaction, errProcAccessDenied, errNoSuchTable, errBadField, errParse,
		errNoDatabase, errBadDB, errSPDoesNotExist, errFuncDoesNotExist, errNonUniq, errUnknownTable,
		errOperandColumns, errSubqueryRows, errWrongParamcount, errWrongParameters, errViewInvalid, errSignal:
		return true
	}
	return false
}

// nativeHash is a password's mysql_native_password hash, "*" and SHA1(SHA1(password)) in
// upper-case hex: the form the server keeps and accepts in IDENTIFIED VIA
// mysql_native_password USING, so the password itself is never sent in a statement.
func nativeHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

// quote returns s as a string literal. Names are validated to need no escaping; this
// escapes anyway.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// account returns 'user'@'host'.
func account(user, host string) string { return quote(user) + "@" + quote(host) }

// roleName returns a role as a quoted identifier.
func roleName(role string) string { return "`" + strings.ReplaceAll(role, "`", "``") + "`" }

// session is one connection, with the handle that owns it.
type session struct {
	*sql.Conn
	db *sql.DB
}

func (s session) close() {
	_ = s.Conn.Close()
	_ = s.db.Close()
}

// connect logs in as user with password and returns one connection.
func (r *Rotator) connect(ctx context.Context, user, password string) (session, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(r.cfg.Host, strconv.Itoa(r.cfg.Port))
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = r.cfg.ConnectTimeout, r.cfg.ConnectTimeout, r.cfg.ConnectTimeout
	cfg.TLS = r.tls
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return session{}, fmt.Errorf("mariadb: %w: %v", rotators.ErrInvalidConfig, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return session{}, err
	}
	return session{Conn: c, db: db}, nil
}

// connectAdmin logs in as the admin; a refused login is final.
func (r *Rotator) connectAdmin(ctx context.Context) (session, error) {
	s, err := r.connect(ctx, r.cfg.AdminUser, r.cfg.AdminPassword.Reveal())
	if err != nil {
		if code(err) == errAccessDenied || code(err) == errAccountLocked || code(err) == errAccountLockedMySQL {
			return session{}, r.fail(fmt.Sprintf("log in as admin %q", r.cfg.AdminUser), fmt.Errorf("%w: %w", rotators.ErrPermissionDenied, err))
		}
		return session{}, r.fail(fmt.Sprintf("log in as admin %q", r.cfg.AdminUser), err)
	}
	return s, nil
}

// tlsConfig builds the TLS configuration of a mode; nil for disable.
func tlsConfig(cfg Config) (*tls.Config, error) {
	switch cfg.TLS {
	case TLSDisable:
		return nil, nil
	case TLSRequire:
		// Encrypted, unverified: the documented meaning of require, as in libpq.
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil //nolint:gosec
	}
	name := cfg.ServerName
	if name == "" {
		name = cfg.Host
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	if len(cfg.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, fmt.Errorf("mariadb: %w: the CA file holds no PEM certificate", rotators.ErrInvalidConfig)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// code returns the server's error number of err, or 0.
func code(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// fail wraps err for what was being done, with the server's meaning of its number, and
// with every secret (the admin password, and those given) removed from its text.
func (r *Rotator) fail(what string, err error, secrets ...string) error {
	// A privilege the admin lacks; not one the account under test lacks, which is the
	// check's own failure and must not read as "grant the admin something".
	switch code(err) {
	case errDBAccessDenied, errSpecificAccess, errTableAccessDenied, errKillDenied, errAccessDeniedNoPass:
		if !errors.Is(err, rotators.ErrCheckFailed) {
			err = fmt.Errorf("%w: %w", rotators.ErrPermissionDenied, err)
		}
	}
	wrapped := fmt.Errorf("mariadb: %s: %w", what, err)
	return secret.ScrubError(wrapped, append(secrets, r.cfg.AdminPassword.Reveal()),
		rotators.ErrInvalidConfig, rotators.ErrPermissionDenied, rotators.ErrCredentialRejected, rotators.ErrCheckFailed)
}

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("mariadb: %w: %s", rotators.ErrInvalidConfig, fmt.Sprintf(format, args...))
}
