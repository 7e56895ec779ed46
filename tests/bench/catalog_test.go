package bench

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// catalogPoll is how often the catalog watch reads the leaked roles: the resolution of
// the moment it reports.
const catalogPoll = 50 * time.Millisecond

// catalogWatch tells from the server's catalog when no leaked password can log in any
// more. PostgreSQL authenticates a new login against pg_authid as committed when the
// backend reads it: a role without LOGIN refuses it, and so does one without a password
// or with a SCRAM verifier the password does not match. One read is one query on one
// session of the superuser, where a real login is a backend start (13-15 ms of CPU
// here): the attackers' logins cannot show the moment within less than a round of
// theirs, while the catalog shows it within a poll.
type catalogWatch struct {
	// verdicts caches whether a password matches a verifier, since each match costs a
	// PBKDF2 of 4096 rounds and a verifier changes only when its role's password does.
	verdicts map[verdictKey]bool
}

// verdictKey is one leaked password (its index) against one verifier.
type verdictKey struct {
	cred     int
	verifier string
}

// refusedAt polls the catalog every catalogPoll from start until ctx ends or a read finds
// that none of creds could log in, and returns when that read ended (counted from start),
// or an error.
func (w *catalogWatch) refusedAt(ctx context.Context, env *testenv.Env, creds []leaked, start time.Time) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, env.Cluster.SuperDSN())
	if err != nil {
		return 0, fmt.Errorf("catalog watch: connect as the superuser: %w", err)
	}
	defer conn.Close(context.Background())
	roles := make([]string, len(creds))
	for i, c := range creds {
		roles[i] = c.role
	}
	t := time.NewTicker(catalogPoll)
	defer t.Stop()
	for {
		open, err := w.anyOpen(ctx, conn, creds, roles)
		if err != nil {
			return 0, err
		}
		if !open {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// anyOpen reads the leaked roles once and reports whether any of creds could log in.
func (w *catalogWatch) anyOpen(ctx context.Context, conn *pgx.Conn, creds []leaked, roles []string) (bool, error) {
	rows, err := conn.Query(ctx, "SELECT rolname, rolcanlogin, rolpassword FROM pg_authid WHERE rolname = ANY($1)", roles)
	if err != nil {
		return false, fmt.Errorf("catalog watch: read pg_authid: %w", err)
	}
	type authRow struct {
		canLogin bool
		verifier *string
	}
	byRole := map[string]authRow{}
	for rows.Next() {
		var name string
		var r authRow
		if err := rows.Scan(&name, &r.canLogin, &r.verifier); err != nil {
			return false, err
		}
		byRole[name] = r
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("catalog watch: read pg_authid: %w", err)
	}
	for i, c := range creds {
		r, ok := byRole[c.role]
		if !ok || !r.canLogin || r.verifier == nil {
			continue // no such role, NOLOGIN, or no password: refused
		}
		key := verdictKey{cred: i, verifier: *r.verifier}
		match, seen := w.verdicts[key]
		if !seen {
			var decided bool
			match, decided = scramMatches(*r.verifier, c.password.Reveal())
			if !decided {
				match = true // a verifier this check cannot read: count the password as working
			}
			w.verdicts[key] = match
		}
		if match {
			return true, nil
		}
	}
	return false, nil
}

// scramMatches reports whether password matches a SCRAM-SHA-256 verifier as PostgreSQL
// stores it ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", RFC 5802 and
// 7677); decided is false for anything else (an md5 verifier, a password SASLprep would
// change). Keyturn's passwords are printable ASCII, which SASLprep leaves as it is.
func scramMatches(verifier, password string) (match, decided bool) {
	for _, r := range password {
		if r < 0x21 || r > 0x7e {
			return false, false
		}
	}
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	if !ok {
		return false, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false, false
	}
	iterText, saltText, ok1 := strings.Cut(params, ":")
	storedText, _, ok2 := strings.Cut(keys, ":")
	iterations, err := strconv.Atoi(iterText)
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	stored, err2 := base64.StdEncoding.DecodeString(storedText)
	if !ok1 || !ok2 || err != nil || err1 != nil || err2 != nil || iterations <= 0 {
		return false, false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return false, false
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	clientKey := sha256.Sum256(mac.Sum(nil))
	return hmac.Equal(clientKey[:], stored), true
}
