package postgres

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/rotators"
)

// statsRole is the predefined role whose members see every field of every session in
// pg_stat_activity. Without it (or the privileges of the role whose sessions are
// listed) the server still lists the sessions and their user, but hides when they
// started and where from, so InUse could neither name the callers nor, with the single
// strategy, tell old sessions from new ones.
const statsRole = "pg_read_all_stats"

// SessionStartMargin widens the single strategy's line between old and new sessions:
// a session counts if it began before the promotion plus the server clock's measured
// offset plus this margin. The offset is measured at each check (the server's
// clock_timestamp() against the worker's clock); the margin covers what that cannot
// see: the promotion time is the workflow's clock (Temporal's), not the worker's, and
// clocks drift. It errs towards holding: a session opened with the new password within
// the margin after the promotion counts as a use until it closes.
const SessionStartMargin = time.Minute

// workerClock is the worker's clock as InUse reads it to measure the server's offset; a
// test sets it to stand for a worker whose clock is behind or ahead.
var workerClock = time.Now

var _ rotators.UsageReporter = (*Rotator)(nil)

// InUse lists the open sessions of the version's login role in pg_stat_activity (every
// database of the server), as the admin, leaving out the admin's own session. It only
// reads.
//
// When req.Keep uses another role (the alternating strategy: the old version is the other
// twin) every session of the old role counts. When it uses the same role (the single
// strategy: only the password changed) a session counts only if it began before
// req.Since, the promotion, since only those can have logged in with the old password;
// Usage.Checked says so. backend_start is the server's clock and req.Since the
// workflow's, so the line is moved by the server's offset from the worker's clock,
// measured at each check, and then by SessionStartMargin: a server clock ahead would
// otherwise make old-password sessions look new, and the old version idle. All of it
// errs towards holding: a session opened with the new password between Apply and the
// promotion, or within the margin after it, counts too.
//
// A role that does not exist has no sessions. An admin that lacks pg_read_all_stats (and
// the privileges of the role) gets an error wrapping rotators.ErrPermissionDenied that
// names the grant: the server would hide the sessions' details, and reporting them as
// unknown callers, or a shared role as idle, would mislead the gate.
func (r *Rotator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	login, err := r.knownRole(req.Version)
	if err != nil {
		return rotators.Usage{}, err
	}
	shared := req.Keep != nil && req.Keep.Metadata[MetadataRole] == login
	if shared && req.Since.IsZero() {
		return rotators.Usage{}, fmt.Errorf("postgres in use: %w: version %s shares role %q with the version kept, and no promotion time was given to tell its sessions apart",
			rotators.ErrInvalidConfig, req.Version.Token, login)
	}
	checked := fmt.Sprintf("sessions of role %q in pg_stat_activity", login)

	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	conn, err := r.connectAdmin(ctx)
	if err != nil {
		return rotators.Usage{}, err
	}
	defer conn.release()

	var exists, stats, member bool
	var serverNow time.Time
	asked := workerClock()
	err = conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		       pg_has_role(current_user, $2::name, 'USAGE'),
		       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND pg_has_role(current_user, oid, 'USAGE')),
		       clock_timestamp()`,
		login, statsRole).Scan(&exists, &stats, &member, &serverNow)
	if err != nil {
		return rotators.Usage{}, fail(fmt.Sprintf("in use: check what admin %q may see", r.cfg.AdminUser), err)
	}
	var before *time.Time
	if shared {
		// The server read its clock after the worker did, so the offset measured is the
		// true one plus the query's latency: an error towards holding.
		offset := serverNow.Sub(asked).Round(time.Millisecond)
		line := req.Since.Add(offset + SessionStartMargin).UTC()
		before = &line
		checked = fmt.Sprintf("sessions of role %q in pg_stat_activity that began before %s by the server's clock: the promotion at %s, plus the server clock's offset from the worker's (%s, measured now) and a margin of %s "+
			"(the new version uses the same role; only a session opened earlier can hold the old password, and one opened within the margin after the promotion counts too)",
			login, line.Format(time.RFC3339), req.Since.UTC().Format(time.RFC3339), offset, SessionStartMargin)
	}
	if !exists {
		return rotators.Usage{Checked: checked + ": the role does not exist"}, nil
	}
	if !stats && !member {
		return rotators.Usage{}, fmt.Errorf("in use: %w: admin %q cannot see when and from where the sessions of role %q began; grant it %s (GRANT %s TO %s)",
			rotators.ErrPermissionDenied, r.cfg.AdminUser, login, statsRole, statsRole, ident(r.cfg.AdminUser))
	}

	uses, err := listSessions(ctx, conn.Conn, login, before)
	if err != nil {
		return rotators.Usage{}, err
	}
	return rotators.Usage{Uses: uses, Checked: checked}, nil
}

// listSessions reads the sessions of login, those that began before before when it is set.
func listSessions(ctx context.Context, conn *pgx.Conn, login string, before *time.Time) ([]rotators.Use, error) {
	rows, err := conn.Query(ctx, `
		SELECT pid, coalesce(application_name, ''), host(client_addr), coalesce(client_port, -1),
		       backend_start, coalesce(datname, ''), coalesce(state, '')
		FROM pg_stat_activity
		WHERE usename = $1 AND pid <> pg_backend_pid()
		  AND ($2::timestamptz IS NULL OR backend_start < $2::timestamptz)
		ORDER BY backend_start, pid`, login, before)
	if err != nil {
		return nil, fail(fmt.Sprintf("in use: list sessions of role %q", login), err)
	}
	var uses []rotators.Use
	for rows.Next() {
		var (
			pid, port      int32
			app, db, state string
			addr           *string
			start          *time.Time
		)
		if err := rows.Scan(&pid, &app, &addr, &port, &start, &db, &state); err != nil {
			return nil, fail(fmt.Sprintf("in use: read sessions of role %q", login), err)
		}
		if start == nil {
			// The privilege check passed, so this only happens if it was revoked meanwhile;
			// a session without its details must not pass for an idle role.
			return nil, fmt.Errorf("in use: %w: pg_stat_activity hides the details of a session of role %q (pid %d); grant %s to the admin",
				rotators.ErrPermissionDenied, login, pid, statsRole)
		}
		uses = append(uses, rotators.Use{
			User:        login,
			Application: app,
			Client:      clientOf(addr, port),
			Since:       start.UTC(),
			Detail:      sessionDetail(pid, db, state),
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fail(fmt.Sprintf("in use: list sessions of role %q", login), err)
	}
	return uses, nil
}

// clientOf formats a session's client address: host and port over TCP, or the Unix
// socket, for which pg_stat_activity has no address and port -1.
func clientOf(addr *string, port int32) string {
	switch {
	case addr == nil && port == -1:
		return "local (Unix socket)"
	case addr == nil:
		return ""
	case port > 0:
		return net.JoinHostPort(*addr, strconv.Itoa(int(port)))
	}
	return *addr
}

// sessionDetail names what an operator needs to find or end a session.
func sessionDetail(pid int32, db, state string) string {
	parts := []string{fmt.Sprintf("backend pid %d", pid)}
	if db != "" {
		parts = append(parts, fmt.Sprintf("database %q", db))
	}
	if state != "" {
		parts = append(parts, "state "+state)
	}
	return strings.Join(parts, ", ")
}
