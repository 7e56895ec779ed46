package postgres

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
	"github.com/keyturn/keyturn/secret"
)

// TestVerifierMatchesServer checks our verifier two ways against PostgreSQL itself: one
// computed with a fixed salt is stored verbatim and logs in with the plaintext, and one the
// server computes from a plaintext password is reproduced exactly from its salt.
func TestVerifierMatchesServer(t *testing.T) {
	pgtest.Need(t, cluster)
	super := superConn(t)
	readStored := func(role string) string {
		var stored string
		if err := super.QueryRow(t.Context(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
			t.Fatalf("read rolpassword: %v", err)
		}
		return stored
	}

	role, password := unique("probe"), newPassword()
	salt := []byte("0123456789abcdef")
	v, err := computeVerifier(password, salt, scramIterations)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD %s", ident(role), quoteLiteral(v.text)))
	if got := readStored(role); got != v.text {
		t.Errorf("server stored %q, want our verifier %q", got, v.text)
	}
	if err := tryLogin(t, role, password); err != nil {
		t.Errorf("log in with the plaintext of our verifier: %v", err)
	}
	wantSQLState(t, tryLogin(t, role, password+"x"), sqlstateInvalidPassword)

	// The server hashes a plaintext password itself (this once, in a test, on purpose).
	plain := unique("plain")
	exec(t, super, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD %s", ident(plain), quoteLiteral(password)))
	stored := readStored(plain)
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	head, _, ok := strings.Cut(strings.TrimPrefix(stored, "SCRAM-SHA-256$"), "$")
	iterText, saltText, ok2 := strings.Cut(head, ":")
	iterations, err := strconv.Atoi(iterText)
	serverSalt, err2 := base64.StdEncoding.DecodeString(saltText)
	if !ok || !ok2 || err != nil || err2 != nil {
		t.Fatalf("cannot parse server verifier %q", stored)
	}
	ours, err := computeVerifier(password, serverSalt, iterations)
	if err != nil {
		t.Fatal(err)
	}
	if ours.text != stored {
		t.Errorf("with the server's salt we compute %q, server has %q", ours.text, stored)
	}
}

// TestRevokedPasswordRefused rotates twice by hand and logs in directly: the revoked twin
// is refused, the new one works, and the revoked twin holds no password at all.
func TestRevokedPasswordRefused(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	v2, m2 := s.rotate(&v1)
	if err := s.revoke(v1, &v2); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	old, cur := v1.Metadata[MetadataRole], v2.Metadata[MetadataRole]
	// The password is gone, so the login fails at authentication, before NOLOGIN matters.
	wantSQLState(t, tryLogin(t, old, m1.Get(FieldPassword).Reveal()), sqlstateInvalidPassword)
	if err := tryLogin(t, cur, m2.Get(FieldPassword).Reveal()); err != nil {
		t.Errorf("log in with the new password: %v", err)
	}
	var canLogin bool
	var password *string
	err := superConn(t).QueryRow(t.Context(), "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1", old).Scan(&canLogin, &password)
	if err != nil {
		t.Fatal(err)
	}
	if canLogin || password != nil {
		t.Errorf("revoked twin %q: canlogin=%v, has password=%v; want neither", old, canLogin, password != nil)
	}
}

// TestTwinsSwap checks that rotations alternate between the twins, starting with the first.
func TestTwinsSwap(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	s := &step{t: t, r: mustNew(t, cfg)}
	var prev *secret.Version
	var got []string
	for i := 0; i < 4; i++ {
		v, _ := s.rotate(prev)
		if prev != nil {
			if err := s.revoke(*prev, &v); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
		got = append(got, v.Metadata[MetadataRole])
		prev = &v
	}
	a, b := cfg.Role+"_a", cfg.Role+"_b"
	if want := []string{a, b, a, b}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("roles over four rotations = %v, want %v", got, want)
	}
}

// TestTwinsShareEverything checks that the twins can never drift apart: their privileges on
// tables owned by, granted to and withheld from the group role are identical, and a table
// one twin creates belongs to the group role, so the other can use it.
func TestTwinsShareEverything(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating)
	super := superConn(t)
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	v2, m2 := s.rotate(&v1)
	a, b := v1.Metadata[MetadataRole], v2.Metadata[MetadataRole]

	group := ident(cfg.Role)
	owned, granted, withheld, made := unique("owned"), unique("granted"), unique("withheld"), unique("made")
	for _, table := range []string{owned, granted, withheld} {
		exec(t, super, fmt.Sprintf("CREATE TABLE %s (id int)", ident(table)))
	}
	exec(t, super, fmt.Sprintf("ALTER TABLE %s OWNER TO %s", ident(owned), group))
	exec(t, super, fmt.Sprintf("GRANT SELECT, INSERT ON %s TO %s", ident(granted), group))
	exec(t, super, fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA public TO %s", group))

	privileges := []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
	want := map[string]func(string) bool{
		owned:    func(string) bool { return true },
		granted:  func(p string) bool { return p == "SELECT" || p == "INSERT" },
		withheld: func(string) bool { return false },
	}
	for table, expect := range want {
		for _, p := range privileges {
			var hasA, hasB bool
			err := super.QueryRow(t.Context(), "SELECT has_table_privilege($1, $3, $4), has_table_privilege($2, $3, $4)",
				a, b, table, p).Scan(&hasA, &hasB)
			if err != nil {
				t.Fatal(err)
			}
			if hasA != hasB || hasA != expect(p) {
				t.Errorf("%s on %s: %s=%v %s=%v, want both %v", p, table, a, hasA, b, hasB, expect(p))
			}
		}
	}

	connA := connectDSN(t, cluster.DSN(a, m1.Get(FieldPassword).Reveal(), "postgres"))
	var current, session string
	if err := connA.QueryRow(t.Context(), "SELECT current_user, session_user").Scan(&current, &session); err != nil {
		t.Fatal(err)
	}
	if current != cfg.Role || session != a {
		t.Errorf("twin session runs as current_user=%q session_user=%q, want %q and %q", current, session, cfg.Role, a)
	}
	exec(t, connA, fmt.Sprintf("CREATE TABLE %s (id int)", ident(made)))
	var owner string
	if err := super.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE tablename = $1", made).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != cfg.Role {
		t.Errorf("table made by twin %q is owned by %q, want the group role %q", a, owner, cfg.Role)
	}
	connB := connectDSN(t, cluster.DSN(b, m2.Get(FieldPassword).Reveal(), "postgres"))
	exec(t, connB, fmt.Sprintf("INSERT INTO %s VALUES (1)", ident(made)))
	exec(t, connB, fmt.Sprintf("DROP TABLE %s", ident(made)))
}

// TestSingleStrategy checks that the managed role keeps one name, that Apply replaces the
// old password at once, and that Revoke keeping the new version leaves the role enabled.
func TestSingleStrategy(t *testing.T) {
	cfg := newConfig(t, StrategySingle)
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	v2, m2 := s.rotate(&v1)
	for _, v := range []secret.Version{v1, v2} {
		if v.Metadata[MetadataRole] != cfg.Role || v.Metadata[MetadataUsername] != cfg.Role || v.Metadata[MetadataStrategy] != StrategySingle {
			t.Errorf("metadata %v, want role and username %q, strategy single", v.Metadata, cfg.Role)
		}
	}
	wantSQLState(t, tryLogin(t, cfg.Role, m1.Get(FieldPassword).Reveal()), sqlstateInvalidPassword)
	if err := s.revoke(v1, &v2); err != nil {
		t.Fatalf("Revoke keeping the new version: %v", err)
	}
	if err := tryLogin(t, cfg.Role, m2.Get(FieldPassword).Reveal()); err != nil {
		t.Errorf("log in after Revoke kept the new version: %v", err)
	}
	if err := s.revoke(v2, nil); err != nil {
		t.Fatalf("Revoke without Keep: %v", err)
	}
	wantSQLState(t, tryLogin(t, cfg.Role, m2.Get(FieldPassword).Reveal()), sqlstateInvalidPassword)
}
