package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/rotators"
)

// groupChunk bounds the roles one transaction of RevokeGroup disables: large enough that
// an incident over thousands of roles on one server commits (and waits for its WAL flush)
// a handful of times, small enough that one failed statement holds back few roles.
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
// each that exists), then, after the commit, one statement ending the sessions of those
// whose member asks for it (EndSessions or its TerminateSessions). Each member's own
// rotator names its role and refuses metadata naming a role it does not manage; a role
// shared with the version kept is left alone, as in Revoke.
func (r *Rotator) RevokeGroup(ctx context.Context, members []rotators.GroupMember) []error {
	errs := make([]error, len(members))
	type target struct {
		login string
		end   bool
		idx   []int
	}
	var order []string
	targets := map[string]*target{}
	for i, m := range members {
		pr, ok := m.Rotator.(*Rotator)
		if !ok || pr.GroupKey() != r.GroupKey() {
			errs[i] = fmt.Errorf("postgres: %w: revoke group: member %d is not a rotator of this server and admin", rotators.ErrInvalidConfig, i)
			continue
		}
		login, err := pr.revocableRole(m.Request.Version)
		if err != nil {
			errs[i] = err
			continue
		}
		if keep := m.Request.Keep; keep != nil && keep.Metadata[MetadataRole] == login {
			continue
		}
		t := targets[login]
		if t == nil {
			t = &target{login: login}
			targets[login] = t
			order = append(order, login)
		}
		t.end = t.end || m.Request.EndSessions || pr.cfg.TerminateSessions
		t.idx = append(t.idx, i)
	}
	if len(order) == 0 {
		return errs
	}
	failAll := func(logins []string, err error) {
		for _, l := range logins {
			for _, i := range targets[l].idx {
				errs[i] = err
			}
		}
	}
	conn, err := r.connectAdmin(ctx)
	if err != nil {
		failAll(order, err)
		return errs
	}
	defer conn.release()
	for lo := 0; lo < len(order); lo += groupChunk {
		chunk := order[lo:min(lo+groupChunk, len(order))]
		if err := disableRoles(ctx, conn.Conn, chunk); err != nil {
			failAll(chunk, err)
			continue
		}
		// Only after the commit: a session ended earlier could log straight back in.
		var end []string
		for _, l := range chunk {
			if targets[l].end {
				end = append(end, l)
			}
		}
		if len(end) == 0 {
			continue
		}
		_, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1) AND pid <> pg_backend_pid()", end)
		if err != nil {
			failAll(end, fail(fmt.Sprintf("terminate sessions of %d roles", len(end)), err))
		}
	}
	return errs
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
