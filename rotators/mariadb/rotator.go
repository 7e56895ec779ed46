package mariadb

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Keys of the metadata Generate writes, and of the material field.
const (
	// MetadataUser is the account's user name the version's password belongs to.
	MetadataUser = "user"
	// MetadataUsername is the user name consumers log in with (the same account).
	MetadataUsername = "username"
	// MetadataHostPattern is the host part of the account ('%').
	MetadataHostPattern = "host_pattern"
	// MetadataStrategy is the strategy that made the version.
	MetadataStrategy = "strategy"
	// MetadataHost and MetadataPort are the server consumers reach.
	MetadataHost = "host"
	MetadataPort = "port"
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
)

// passwordBytes is the password's randomness: 256 bits, so that nothing can be learnt
// from the SHA-1 based hash the server keeps.
const passwordBytes = 32

// Rotator rotates the password of one MariaDB account, or of a pair of twin accounts
// that hold one role. It holds no connection: each call logs in and out.
type Rotator struct {
	cfg Config
	tls *tls.Config
}

var (
	_ rotators.Generator     = (*Rotator)(nil)
	_ rotators.UsageReporter = (*Rotator)(nil)
)

// New checks cfg, after filling in its defaults, and returns a Rotator for it.
func New(cfg Config) (*Rotator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Rotator{cfg: cfg, tls: t}, nil
}

// Generate makes a password for the account the next version uses: the twin Current
// does not use, or the single account. It does not touch the server.
func (r *Rotator) Generate(_ context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	login := r.cfg.User
	if r.cfg.Strategy == StrategyAlternating {
		login = r.cfg.Twins[0]
		if req.Current != nil && req.Current.Metadata[MetadataUser] == r.cfg.Twins[0] {
			login = r.cfg.Twins[1]
		}
	}
	b := make([]byte, passwordBytes)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return rotators.Generated{
		Material: secret.Material{FieldPassword: secret.NewSensitive(base64.RawURLEncoding.EncodeToString(b))},
		Metadata: map[string]string{
			MetadataUser:        login,
			MetadataUsername:    login,
			MetadataHostPattern: r.cfg.HostPattern,
			MetadataStrategy:    r.cfg.Strategy,
			MetadataHost:        r.cfg.Host,
			MetadataPort:        strconv.Itoa(r.cfg.Port),
		},
	}, nil
}

// Apply gives the version's account its password, sent only as its hash. With the
// alternating strategy it first makes the twin exist (locked), holds the role, and has
// the role as its default (set by the twin itself, which needs no privilege on the
// mysql schema); the password and the unlock come last. Every statement is idempotent.
func (r *Rotator) Apply(ctx context.Context, req rotators.ApplyRequest) error {
	login, host, err := r.accountOf(req.Version)
	if err != nil {
		return err
	}
	password := req.Material.Get(FieldPassword).Reveal()
	if password == "" {
		return invalidConfig("version %d has no %q field", req.Version.Number, FieldPassword)
	}
	hash := nativeHash(password)
	using := "IDENTIFIED VIA mysql_native_password USING " + quote(hash)
	acct := account(login, host)

	s, err := r.connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	var steps [][2]string
	if r.cfg.Strategy == StrategyAlternating {
		steps = append(steps,
			[2]string{"create account " + login, "CREATE USER IF NOT EXISTS " + acct + " " + using + " ACCOUNT LOCK"},
			[2]string{"grant role " + r.cfg.Role + " to " + login, "GRANT " + roleName(r.cfg.Role) + " TO " + acct})
	}
	steps = append(steps, [2]string{"set the password of " + login, "ALTER USER " + acct + " " + using + " ACCOUNT UNLOCK"})
	for _, st := range steps {
		if _, err := s.ExecContext(ctx, st[1]); err != nil {
			switch code(err) {
			case errInvalidRole:
				return invalidConfig("role %q does not exist; create it with the privileges the application needs, and GRANT it to the admin WITH ADMIN OPTION", r.cfg.Role)
			case errCannotUser:
				return invalidConfig("account %s does not exist; create it before the first rotation", acct)
			}
			return r.fail(st[0], err, password, hash)
		}
	}
	if r.cfg.Strategy == StrategyAlternating {
		self, err := r.connect(ctx, login, password)
		if err != nil {
			if c := code(err); c == errAccessDenied || c == errHostNotPrivileged {
				return invalidConfig("the worker cannot log in as %s with the password just set (error %d): host_pattern %q must match the worker's address too", login, c, host)
			}
			return r.fail("log in as "+login+" to set its default role", err, password, hash)
		}
		defer self.close()
		if _, err := self.ExecContext(ctx, "SET DEFAULT ROLE "+roleName(r.cfg.Role)); err != nil {
			return r.fail("set the default role of "+login, err, password, hash)
		}
	}
	return nil
}

// Test logs in as the version's account with its password (over TLS when configured),
// checks that the twin acts as the role, and runs the check query in a read-only
// transaction. A refused login is rotators.ErrCredentialRejected; a check that fails is
// rotators.ErrCheckFailed.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	login, _, err := r.accountOf(req.Version)
	if err != nil {
		return err
	}
	password := req.Material.Get(FieldPassword).Reveal()
	if password == "" {
		return invalidConfig("version %d has no %q field", req.Version.Number, FieldPassword)
	}
	s, err := r.connect(ctx, login, password)
	if err != nil {
		switch code(err) {
		case errAccessDenied, errAccountLocked, errAccountLockedMySQL:
			return r.fail("log in as "+login, fmt.Errorf("%w: %w", rotators.ErrCredentialRejected, err), password)
		case errHostNotPrivileged:
			return invalidConfig("the server does not let %s log in from the worker's address (error %d); host_pattern must match it", login, errHostNotPrivileged)
		}
		return r.fail("log in as "+login, err, password)
	}
	defer s.close()
	if r.cfg.Strategy == StrategyAlternating {
		var active *string
		if err := s.QueryRowContext(ctx, "SELECT CURRENT_ROLE()").Scan(&active); err != nil {
			return r.fail("read the role of "+login, err, password)
		}
		if active == nil || *active != r.cfg.Role {
			return r.fail("check the role of "+login, fmt.Errorf("%w: the account does not act as role %q at login", rotators.ErrCheckFailed, r.cfg.Role))
		}
	}
	if r.cfg.CheckQuery == "" {
		return nil
	}
	// The session default too: a statement that commits implicitly (DDL) would otherwise
	// leave the read-only transaction behind.
	if _, err := s.ExecContext(ctx, "SET SESSION TRANSACTION READ ONLY"); err != nil {
		return r.fail("make the session read-only", err, password)
	}
	if _, err := s.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
		return r.fail("begin the check", err, password)
	}
	defer func() { _, _ = s.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	rows, err := s.QueryContext(ctx, r.cfg.CheckQuery)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		_ = rows.Close()
	}
	if err != nil {
		if checkRefused(code(err)) {
			err = fmt.Errorf("%w: %w", rotators.ErrCheckFailed, err)
		}
		return r.fail("run the check query as "+login, err, password)
	}
	return nil
}

// Revoke locks the version's account (ACCOUNT LOCK), unless Keep uses the same account
// (the single strategy, whose old password is already replaced), and ends its
// connections when the configuration or the request asks. Locking an account that does
// not exist is success.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	login, host, err := r.accountOf(req.Version)
	if err != nil {
		return err
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataUser] == login {
		return nil
	}
	s, err := r.connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := s.ExecContext(ctx, "ALTER USER "+account(login, host)+" ACCOUNT LOCK"); err != nil && code(err) != errCannotUser {
		return r.fail("lock "+login, err)
	}
	// Only after the lock: a connection ended earlier could log straight back in.
	if r.cfg.TerminateSessions || req.EndSessions {
		if _, err := r.endSessions(ctx, s, login); err != nil {
			return err
		}
	}
	return nil
}

// endSessions ends every connection of login and returns them.
func (r *Rotator) endSessions(ctx context.Context, s session, login string) ([]rotators.Use, error) {
	uses, ids, err := r.sessions(ctx, s, login)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		// KILL takes no placeholder; id is a number the server gave.
		if _, err := s.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil && code(err) != errNoSuchThread {
			return nil, r.fail("end a connection of "+login, err)
		}
	}
	return uses, nil
}

// sessions lists login's connections in the processlist. Without PROCESS the
// processlist shows the admin's own connections only, and an empty answer would be a
// lie, so the privilege is checked first.
func (r *Rotator) sessions(ctx context.Context, s session, login string) ([]rotators.Use, []uint64, error) {
	var n int
	if err := s.QueryRowContext(ctx, processGranted).Scan(&n); err != nil {
		return nil, nil, r.fail("read the admin's privileges", err)
	}
	if n == 0 {
		return nil, nil, r.fail("list the connections of "+login, fmt.Errorf("%w: the admin lacks the PROCESS privilege, so the processlist shows only its own connections", rotators.ErrPermissionDenied))
	}
	rows, err := s.QueryContext(ctx, "SELECT ID, HOST, COALESCE(DB, '') FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()", login)
	if err != nil {
		return nil, nil, r.fail("list the connections of "+login, err)
	}
	defer rows.Close()
	var (
		uses []rotators.Use
		ids  []uint64
	)
	for rows.Next() {
		var (
			id       uint64
			host, db string
		)
		if err := rows.Scan(&id, &host, &db); err != nil {
			return nil, nil, r.fail("read the connections of "+login, err)
		}
		ids = append(ids, id)
		detail := fmt.Sprintf("connection id %d", id)
		if db != "" {
			detail += " in database " + db
		}
		uses = append(uses, rotators.Use{User: login, Client: host, Detail: detail})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, r.fail("read the connections of "+login, err)
	}
	return uses, ids, nil
}

// InUse reports the connections of the version's twin. The single strategy cannot tell
// the old password's connections from the new one's (one account), so it does not
// report; the inventory refuses a revoke gate on it.
func (r *Rotator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	login, _, err := r.accountOf(req.Version)
	if err != nil {
		return rotators.Usage{}, err
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataUser] == login {
		return rotators.Usage{}, invalidConfig("versions of the single strategy share account %s, so its connections cannot tell whether the old password is in use; turn the revoke gate off for this secret", login)
	}
	s, err := r.connectAdmin(ctx)
	if err != nil {
		return rotators.Usage{}, err
	}
	defer s.close()
	uses, _, err := r.sessions(ctx, s, login)
	if err != nil {
		return rotators.Usage{}, err
	}
	return rotators.Usage{Uses: uses, Checked: fmt.Sprintf("connections of account %s in information_schema.PROCESSLIST", login)}, nil
}

// processGranted counts the admin's global PROCESS privilege, granted to the account
// itself (the server shows other accounts' connections only to PROCESS; SUPER does not
// count, and one held through a role is not listed here, so grant it directly).
// USER_PRIVILEGES names the grantee 'user'@'host'.
const processGranted = `SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
	WHERE PRIVILEGE_TYPE = 'PROCESS'
	AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')`

// accountOf returns the account a version names, refusing one this configuration does
// not manage: the store's metadata must not steer the rotator to another account.
func (r *Rotator) accountOf(v secret.Version) (user, host string, err error) {
	user = v.Metadata[MetadataUser]
	if user == "" {
		return "", "", invalidConfig("version %d names no %s; record it with `keyturn put --meta user=<account>`", v.Number, MetadataUser)
	}
	if !slices.Contains(r.cfg.managed(), user) {
		return "", "", invalidConfig("version %d names account %q, which this secret does not manage (%v)", v.Number, user, r.cfg.managed())
	}
	host = v.Metadata[MetadataHostPattern]
	if host == "" {
		host = r.cfg.HostPattern
	}
	if msg := HostPatternProblem(host); msg != "" {
		return "", "", invalidConfig("version %d's host pattern %s", v.Number, msg)
	}
	return user, host, nil
}
