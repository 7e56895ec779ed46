package bench

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/internal/harness/pgtest"
)

// The catalog watch decides from PostgreSQL's own SCRAM verifiers: a password matches the
// verifier the server stored for it, and no other; anything but a SCRAM-SHA-256 verifier
// is left undecided.
func TestScramMatchesTheServersVerifier(t *testing.T) {
	c := pgtest.ForTest(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, c.SuperDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const password = "Ab3-xY9_kQ7.zZ1~wV"
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE scram_probe LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	var verifier string
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'").Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		password           string
		verifier           string
		wantMatch, decided bool
	}{
		{password, verifier, true, true},
		{password + "x", verifier, false, true},
		{"Ab3-xY9_kQ7.zZ1~wv", verifier, false, true},
		{password, "md5" + "0123456789abcdef0123456789abcdef", false, false},
		{"pässword", verifier, false, false}, // SASLprep could change it
		{password, "SCRAM-SHA-256$4096:not base64$x:y", false, false},
	} {
		match, decided := scramMatches(tc.verifier, tc.password)
		if match != tc.wantMatch || decided != tc.decided {
			// Neither the password nor the verifier is printed: the case's number says which.
			t.Errorf("case %d: scramMatches = %v, %v; want %v, %v", i, match, decided, tc.wantMatch, tc.decided)
		}
	}
	// And the server agrees with the match: the password logs in.
	login, err := pgx.Connect(ctx, c.DSN("scram_probe", password, "postgres"))
	if err != nil {
		t.Fatalf("the password the verifier matches does not log in: %v", err)
	}
	_ = login.Close(ctx)
}
