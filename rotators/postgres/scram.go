package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/secret"
)

const (
	// passwordBytes of randomness give a 43-character password.
	passwordBytes = 32
	// scramIterations is PostgreSQL's default (scram_iterations); the password carries
	// 256 random bits, so more iterations would add nothing but time.
	scramIterations = 4096
	// scramSaltLen is the salt length PostgreSQL itself uses.
	scramSaltLen = 16
)

// newPassword returns 32 random bytes as unpadded URL-safe base64.
func newPassword() string {
	b := make([]byte, passwordBytes)
	// crypto/rand.Read never fails since Go 1.24: it crashes the program rather than return
	// predictable bytes.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// verifier is a SCRAM-SHA-256 verifier in PostgreSQL's format,
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, with its two secret parts
// kept apart so the sanitizer can remove them from errors one by one.
type verifier struct {
	text      string
	storedKey string
	serverKey string
}

// secrets lists the strings that must never appear in an error.
func (v verifier) secrets() []string { return []string{v.text, v.storedKey, v.serverKey} }

// newVerifier computes a verifier for password with a fresh random salt.
func newVerifier(password string) (verifier, error) {
	salt := make([]byte, scramSaltLen)
	_, _ = rand.Read(salt)
	return computeVerifier(password, salt, scramIterations)
}

// computeVerifier derives the verifier as RFC 5802 section 3 describes:
//
//	SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
//	StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// SCRAM wants the password normalised with SASLprep first. Passwords made by newPassword
// are printable ASCII, for which SASLprep changes nothing, so the step is skipped and any
// other password is refused rather than hashed differently from how the server would.
func computeVerifier(password string, salt []byte, iterations int) (verifier, error) {
	if !isPrintableASCII(password) {
		return verifier{}, errors.New("scram verifier: password is not printable ASCII (SASLprep is not implemented)")
	}
	if len(salt) == 0 || iterations < 1 {
		return verifier{}, errors.New("scram verifier: empty salt or no iterations")
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return verifier{}, fmt.Errorf("scram verifier: pbkdf2: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")

	b64 := base64.StdEncoding.EncodeToString
	v := verifier{storedKey: b64(storedKey[:]), serverKey: b64(serverKey)}
	v.text = fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), v.storedKey, v.serverKey)
	return v, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// quoteLiteral quotes s as an SQL string literal, the way PostgreSQL's quote_literal does,
// for the statements that take no bind parameters (ALTER ROLE ... PASSWORD, SET role).
// Backslashes make it an E'...' literal so the result is right whatever
// standard_conforming_strings says. NUL bytes cannot be sent at all and are dropped.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return "'" + s + "'"
}

// SCRAMVerifier returns the SCRAM-SHA-256 verifier of password with a fresh salt, in the
// form `ALTER ROLE ... PASSWORD '<verifier>'` accepts. Setup code (the demo, tests, an
// operator seeding an admin) uses it so that no plaintext password reaches the server or
// its statement log.
func SCRAMVerifier(password secret.Sensitive) (string, error) {
	v, err := newVerifier(password.Reveal())
	if err != nil {
		return "", err
	}
	return v.text, nil
}
