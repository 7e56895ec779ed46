package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/pgxspans"
)

// Keys of the metadata Generate writes, and of the material field.
const (
	// MetadataRole is the login role the version's password belongs to.
	MetadataRole = "role"
	// MetadataUsername is the user name consumers log in with (the same login role).
	MetadataUsername = "username"
	// MetadataStrategy is the strategy that made the version.
	MetadataStrategy = "strategy"
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
)

// Rotator rotates the password of one PostgreSQL role. It holds no connection itself:
// each call logs in, or borrows an admin session from the worker's Pools, and gives it
// back when done. Pooled sessions close after 30 s unused, so a worker holds nothing open
// between the steps of a rotation, which may be hours apart.
type Rotator struct {
	cfg Config
	// tracer makes the spans of every session; nil when cfg has no TracerProvider.
	tracer *pgxspans.Tracer
	// onNotice, when set (by tests), receives every NOTICE the server sends on the
	// rotator's sessions.
	onNotice func(*pgconn.Notice)
}

var _ rotators.Rotator = (*Rotator)(nil)

// New checks cfg, after filling in its defaults, and returns a Rotator for it.
func New(cfg Config) (*Rotator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Rotator{cfg: cfg, tracer: pgxspans.New(cfg.TracerProvider, cfg.Host, cfg.Port, cfg.Database)}, nil
}

// Generate makes a new password for the login role the next version will use: the twin
// that Current does not use, or the managed role itself with the single strategy. Its
// metadata names that role as the user name, and the server consumers reach it on. It
// does not touch the server.
func (r *Rotator) Generate(_ context.Context, req rotators.GenerateRequest) (rotators.Generated, error) {
	login := r.cfg.Role
	if r.cfg.Strategy == StrategyAlternating {
		login = r.cfg.Twins[0]
		if req.Current != nil && req.Current.Metadata[MetadataRole] == r.cfg.Twins[0] {
			login = r.cfg.Twins[1]
		}
	}
	return rotators.Generated{
		Material: secret.Material{FieldPassword: secret.NewSensitive(newPassword())},
		Metadata: map[string]string{
			MetadataRole:     login,
			MetadataStrategy: r.cfg.Strategy,
			MetadataUsername: login,
			MetadataEngine:   EnginePostgres,
			MetadataHost:     r.cfg.Host,
			MetadataPort:     strconv.Itoa(r.cfg.Port),
			MetadataDBName:   r.cfg.Database,
		},
	}, nil
}

// Apply sets the version's password on its login role, preparing the twin first with the
// alternating strategy (see the package documentation). Applying the same material again
// is harmless: only the verifier's salt changes.
func (r *Rotator) Apply(ctx context.Context, req rotators.ApplyRequest) error {
	login, err := r.applyRole(req.Version)
	if err != nil {
		return err
	}
	password, err := passwordOf(req.Material)
	if err != nil {
		return err
	}
	v, err := newVerifier(password)
	if err != nil {
		return fmt.Errorf("apply to role %q: %w", login, err)
	}
	secrets := append(v.secrets(), password)

	conn, err := r.connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer conn.release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail("apply: begin", err)
	}
	defer rollback(ctx, tx)

	if r.cfg.Strategy == StrategyAlternating {
		if err := r.prepareTwin(ctx, tx, login); err != nil {
			return err
		}
	} else if exists, err := roleExists(ctx, tx, login); err != nil {
		return err
	} else if !exists {
		return invalidConfig("role %q does not exist", login)
	}

	// ALTER ROLE takes no bind parameters, hence the quoted literal.
	attrs := "LOGIN"
	if r.cfg.Strategy == StrategyAlternating {
		attrs = "LOGIN INHERIT"
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER ROLE %s WITH %s PASSWORD %s", ident(login), attrs, quoteLiteral(v.text))); err != nil {
		return fail(fmt.Sprintf("set password of role %q", login), err, secrets...)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Sprintf("set password of role %q: commit", login), err, secrets...)
	}
	return nil
}

// prepareTwin makes sure the twin exists, is a direct member of the group role and acts as
// it in every session. Each step is skipped when already true, so an admin that lacks a
// privilege only matters when that privilege is really needed.
func (r *Rotator) prepareTwin(ctx context.Context, tx pgx.Tx, twin string) error {
	group := r.cfg.Role
	if exists, err := roleExists(ctx, tx, group); err != nil {
		return err
	} else if !exists {
		return invalidConfig("group role %q does not exist; create it, with the privileges the application needs, before the first rotation", group)
	}
	exists, err := roleExists(ctx, tx, twin)
	if err != nil {
		return err
	}
	if !exists {
		// NOLOGIN until the password is set, so the role is never open without one.
		if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE ROLE %s WITH NOLOGIN INHERIT", ident(twin))); err != nil {
			return fail(fmt.Sprintf("create role %q", twin), err)
		}
	}
	var member bool
	err = tx.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_auth_members m
			JOIN pg_roles g ON g.oid = m.roleid
			JOIN pg_roles u ON u.oid = m.member
			WHERE g.rolname = $1 AND u.rolname = $2)`, group, twin).Scan(&member)
	if err != nil {
		return fail(fmt.Sprintf("check membership of %q in %q", twin, group), err)
	}
	if !member {
		if _, err := tx.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", ident(group), ident(twin))); err != nil {
			return fail(fmt.Sprintf("grant %q to %q", group, twin), err)
		}
	}
	// Objects a twin creates then belong to the group role, so the other twin can use
	// them and the twins never drift apart.
	var set bool
	err = tx.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_db_role_setting s
			JOIN pg_roles u ON u.oid = s.setrole
			WHERE u.rolname = $1 AND s.setdatabase = 0 AND $2 = ANY (s.setconfig))`, twin, "role="+group).Scan(&set)
	if err != nil {
		return fail(fmt.Sprintf("check default role of %q", twin), err)
	}
	if set {
		return nil
	}
	// The server checks the value against the session's user, the admin, who is not a
	// member of the group role and need not be, and says so in a NOTICE ("permission
	// will be denied to set role"); the twin is a member, so the setting works. Silence
	// that one expected notice, for this transaction only.
	if _, err := tx.Exec(ctx, "SET LOCAL client_min_messages = warning"); err != nil {
		return fail("quiet notices", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER ROLE %s SET role = %s", ident(twin), quoteLiteral(group))); err != nil {
		return fail(fmt.Sprintf("set default role of %q", twin), err)
	}
	return nil
}

// Test logs in as the version's role with its password, runs SELECT 1, checks that a twin
// can use the group role's privileges, and runs the configured check query, all within
// ConnectTimeout. A refused login wraps rotators.ErrCredentialRejected.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	login, err := r.knownRole(req.Version)
	if err != nil {
		return err
	}
	password, err := passwordOf(req.Material)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()

	conn, err := r.connect(ctx, login, password)
	if err != nil {
		if loginRefused(err) {
			return fmt.Errorf("test: log in as %q: %w: %w", login, rotators.ErrCredentialRejected, sanitize(err, password))
		}
		return fail(fmt.Sprintf("test: log in as %q", login), err, password)
	}
	defer closeConn(ctx, conn)

	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fail(fmt.Sprintf("test: SELECT 1 as %q", login), err, password)
	}
	if r.isTwin(login) {
		var usable bool
		err := conn.QueryRow(ctx, "SELECT pg_has_role(session_user, $1::name, 'USAGE')", r.cfg.Role).Scan(&usable)
		if err != nil {
			return fail(fmt.Sprintf("test: check membership of %q in %q", login, r.cfg.Role), err, password)
		}
		if !usable {
			return fmt.Errorf("test: role %q cannot use the privileges of group role %q: %w", login, r.cfg.Role, rotators.ErrCredentialRejected)
		}
	}
	if r.cfg.CheckQuery != "" {
		if err := r.runCheckQuery(ctx, conn); err != nil {
			err = sanitize(err, password)
			// The credential logged in; the query failing (no privilege, no such table) is
			// about what it may do, which no retry changes. Not ErrPermissionDenied, which
			// is about the admin. Connection trouble stays retryable.
			if checkRejected(sqlstate(err)) {
				return fmt.Errorf("test: check query as %q: %w: %w", login, rotators.ErrCheckFailed, err)
			}
			return fmt.Errorf("test: check query as %q: %w", login, err)
		}
	}
	return nil
}

// runCheckQuery runs CheckQuery in a read-only transaction that is always rolled back, so
// a check can read but never change the application's data. It goes through the
// extended query protocol (Parse, Bind, Execute), where the server refuses text holding
// more than one statement: pgx's Exec without arguments would use the simple protocol,
// which runs "SELECT 1; COMMIT; INSERT ..." whole, the INSERT after the read-only
// transaction has ended.
//
// pgconn does not call pgx's tracer, so the query's span is made here.
func (r *Rotator) runCheckQuery(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	if r.tracer != nil {
		ctx = r.tracer.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: r.cfg.CheckQuery})
	}
	res := conn.PgConn().ExecParams(ctx, r.cfg.CheckQuery, nil, nil, nil, nil).Read()
	if r.tracer != nil {
		r.tracer.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{CommandTag: res.CommandTag, Err: res.Err})
	}
	return res.Err
}

// Revoke disables the version's login role and, with TerminateSessions or
// req.EndSessions, ends its sessions. It does nothing when Keep uses the same role (single strategy: the old
// password was replaced at Apply) or when the role does not exist.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	login, err := r.revocableRole(req.Version)
	if err != nil {
		return err
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataRole] == login {
		return nil
	}
	conn, err := r.connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer conn.release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail("revoke: begin", err)
	}
	defer rollback(ctx, tx)
	exists, err := roleExists(ctx, tx, login)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER ROLE %s WITH NOLOGIN PASSWORD NULL", ident(login))); err != nil {
		return fail(fmt.Sprintf("revoke login of role %q", login), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Sprintf("revoke login of role %q: commit", login), err)
	}
	// Only after the commit: a session ended earlier could log straight back in.
	if r.cfg.TerminateSessions || req.EndSessions {
		_, err := conn.Exec(ctx,
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", login)
		if err != nil {
			return fail(fmt.Sprintf("terminate sessions of role %q", login), err)
		}
	}
	return nil
}

// applyRole returns the login role Apply may set a password on: a twin with the
// alternating strategy, the managed role with the single strategy.
func (r *Rotator) applyRole(v secret.Version) (string, error) {
	login, err := r.knownRole(v)
	if err != nil {
		return "", err
	}
	if r.cfg.Strategy == StrategyAlternating && !r.isTwin(login) {
		return "", invalidConfig("version %s names role %q, which is not a twin; the alternating strategy never gives the group role a password", v.Token, login)
	}
	if r.cfg.Strategy == StrategySingle && login != r.cfg.Role {
		return "", invalidConfig("version %s names role %q, but the single strategy manages %q", v.Token, login, r.cfg.Role)
	}
	return login, nil
}

// revocableRole returns the login role Revoke may disable: a twin, or the managed role
// itself. Under the alternating strategy the managed role is the group role; its version
// is the credential consumers used before Keyturn adopted the secret (recorded with
// `keyturn put --meta role=<role>`), and revoking it only ends that login: the twins
// keep every privilege, which they inherit.
func (r *Rotator) revocableRole(v secret.Version) (string, error) {
	return r.knownRole(v)
}

// knownRole returns the version's login role if it is one this rotator manages. Metadata
// that names any other role is refused: it is corrupt or from another secret, and acting
// on it could lock out an unrelated role.
func (r *Rotator) knownRole(v secret.Version) (string, error) {
	login := v.Metadata[MetadataRole]
	switch {
	case login == "":
		return "", invalidConfig("version %s has no %q in its metadata", v.Token, MetadataRole)
	case login == r.cfg.Role, r.isTwin(login):
		return login, nil
	}
	return "", invalidConfig("version %s names role %q, which is neither %q nor one of its twins", v.Token, login, r.cfg.Role)
}

func (r *Rotator) isTwin(name string) bool {
	return name != "" && (name == r.cfg.Twins[0] || name == r.cfg.Twins[1])
}

func passwordOf(m secret.Material) (string, error) {
	password := m.Get(FieldPassword)
	if password.IsZero() {
		return "", fmt.Errorf("postgres: %w: material has no %q", rotators.ErrInvalidConfig, FieldPassword)
	}
	return password.Reveal(), nil
}

func roleExists(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return false, fail(fmt.Sprintf("look up role %q", name), err)
	}
	return exists, nil
}

// checkRejected reports whether a check query's SQLSTATE says the query itself cannot
// succeed for this credential: access or syntax (42), data (22), unsupported (0A), schema
// (3F), or a write in the read-only check transaction (25). Other classes (connection,
// resources, cancellation) may pass on a retry.
func checkRejected(state string) bool {
	if len(state) != 5 {
		return false
	}
	switch state[:2] {
	case "42", "22", "0A", "3F", "25":
		return true
	}
	return false
}
