package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/rotators"
)

// groupChunk bounds the roles one transaction of RevokeGroup disables: large enough that
// an incident over thousands of roles on one server commits (and waits for its WAL flush)
// a handful of times. A chunk that fails is done again role by role, so one role the
// admin may not alter fails only its own members.
const groupChunk = 500

var _ rotators.GroupRevoker = (*Rotator)(nil)

// GroupKey is equal for rotators on the same server and database with the same admin
// login and password (compared by digest, in memory only).
func (r *Rotator) GroupKey() any {
	return poolKey{
		host: r.cfg.Host, port: r.cfg.Port, database: r.cfg.Database,
		sslMode: r.cfg.SSLMode, sslRootCert: r.cfg.SSLRootCert,
		user: r.cfg.AdminUser, password: sha256.Sum256([]byte(r.cfg.AdminPassword.Reveal())),
		connectTimeout: r.cfg.ConnectTimeout,
	}
}

// RevokeGroup disables the login roles of many versions on this server in one admin
// session: one transaction per groupChunk roles (ALTER ROLE ... NOLOGIN PASSWORD NULL for
// each that exists), then, after the commit, one statement that ends the sessions of the
// roles whose member asks for it (EndSessions or its TerminateSessions) and returns them,
// so the outcome says whom it cut off. Each member's own rotator names its role and
// refuses metadata naming a role it does not manage; a role shared with the version kept
// is left alone, as in Revoke.
func (r *Rotator) RevokeGroup(ctx context.Context, members []rotators.GroupMember) []rotators.GroupOutcome {
	out := make([]rotators.GroupOutcome, len(members))
	type target struct {
		end bool
		idx []int
	}
	var order []string
	targets := map[string]*target{}
	for i, m := range members {
		pr, ok := m.Rotator.(*Rotator)
		if !ok || pr.GroupKey() != r.GroupKey() {
			out[i].Err = fmt.Errorf("postgres: %w: revoke group: member %d is not a rotator of this server and admin", rotators.ErrInvalidConfig, i)
			continue
		}
		login, err := pr.revocableRole(m.Request.Version)
		if err != nil {
			out[i].Err = err
			continue
		}
		if keep := m.Request.Keep; keep != nil && keep.Metadata[MetadataRole] == login {
			continue
		}
		t := targets[login]
		if t == nil {
			t = &target{}
			targets[login] = t
			order = append(order, login)
		}
		t.end = t.end || m.Request.EndSessions || pr.cfg.TerminateSessions
		t.idx = append(t.idx, i)
	}
	if len(order) == 0 {
		return out
	}
	failAll := func(logins []string, err error) {
		for _, l := range logins {
			for _, i := range targets[l].idx {
				out[i].Err = err
			}
		}
	}
	conn, err := r.connectAdmin(ctx)
	if err != nil {
		failAll(order, err)
		return out
	}
	defer conn.release()
	for lo := 0; lo < len(order); lo += groupChunk {
		chunk := order[lo:min(lo+groupChunk, len(order))]
		disabled := chunk
		if err := disableRoles(ctx, conn.Conn, chunk); err != nil {
			if ctx.Err() != nil {
				failAll(chunk, err)
				continue
			}
			disabled = nil
			for _, l := range chunk {
				if err := disableRoles(ctx, conn.Conn, []string{l}); err != nil {
					failAll([]string{l}, err)
					continue
				}
				disabled = append(disabled, l)
			}
		}
		// Only after the commit: a session ended earlier could log straight back in.
		var end []string
		for _, l := range disabled {
			if targets[l].end {
				end = append(end, l)
			}
		}
		if len(end) == 0 {
			continue
		}
		ended, err := endSessions(ctx, conn.Conn, end)
		if err != nil && ctx.Err() == nil && len(end) > 1 {
			// One role's sessions may be out of the admin's reach: end them role by role.
			ended, err = nil, nil
			for _, l := range end {
				one, err := endSessions(ctx, conn.Conn, []string{l})
				if err != nil {
					failAll([]string{l}, err)
					continue
				}
				ended = append(ended, one...)
			}
		}
		if err != nil {
			failAll(end, err)
			continue
		}
		for _, u := range ended {
			for _, i := range targets[u.User].idx {
				out[i].Ended = append(out[i].Ended, u)
			}
		}
	}
	return out
}

// endSessions ends every session of the logins and returns the ones it ended. A detail
// the admin may not see (without pg_read_all_stats) is left empty.
func endSessions(ctx context.Context, conn *pgx.Conn, logins []string) ([]rotators.Use, error) {
	rows, err := conn.Query(ctx, `
		SELECT usename, pid, coalesce(application_name, ''), host(client_addr), coalesce(client_port, -1),
		       backend_start, coalesce(datname, ''), coalesce(state, ''), pg_terminate_backend(pid)
		FROM pg_stat_activity
		WHERE usename = ANY($1) AND pid <> pg_backend_pid()`, logins)
	if err != nil {
		return nil, fail(fmt.Sprintf("terminate sessions of %d roles", len(logins)), err)
	}
	var ended []rotators.Use
	for rows.Next() {
		var (
			login, app, db, state string
			pid, port             int32
			addr                  *string
			start                 *time.Time
			terminated            bool
		)
		if err := rows.Scan(&login, &pid, &app, &addr, &port, &start, &db, &state, &terminated); err != nil {
			return nil, fail(fmt.Sprintf("terminate sessions of %d roles", len(logins)), err)
		}
		if !terminated { // gone already
			continue
		}
		u := rotators.Use{User: login, Application: app, Client: clientOf(addr, port), Detail: sessionDetail(pid, db, state)}
		if start != nil {
			u.Since = start.UTC()
		}
		ended = append(ended, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(fmt.Sprintf("terminate sessions of %d roles", len(logins)), err)
	}
	return ended, nil
}

// disableRoles disables the login of every role in logins that exists, in one
// transaction.
func disableRoles(ctx context.Context, conn *pgx.Conn, logins []string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail("revoke group: begin", err)
	}
	defer rollback(ctx, tx)
	rows, err := tx.Query(ctx, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", logins)
	if err != nil {
		return fail("revoke group: look up roles", err)
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fail("revoke group: look up roles", err)
	}
	if len(existing) == 0 {
		return nil
	}
	var b strings.Builder
	for _, login := range existing {
		fmt.Fprintf(&b, "ALTER ROLE %s WITH NOLOGIN PASSWORD NULL;\n", ident(login))
	}
	// No arguments, so pgx sends the statements together in one message.
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return fail(fmt.Sprintf("revoke login of %d roles", len(existing)), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Sprintf("revoke login of %d roles: commit", len(existing)), err)
	}
	return nil
}
