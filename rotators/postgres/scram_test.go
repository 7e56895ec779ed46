package postgres

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// TestVerifierRFC7677 checks the verifier against the SCRAM-SHA-256 exchange in RFC 7677
// section 3 (user "user", password "pencil"). The RFC gives the salt, the client's proof
// and the server's signature, not the keys, so the test does what a server does: recover
// ClientKey from the proof with StoredKey and check that it hashes to StoredKey, then
// sign with ServerKey and compare with the RFC's signature.
func TestVerifierRFC7677(t *testing.T) {
	const (
		clientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
		serverFirst     = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinalBare = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
		proof           = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverSignature = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := computeVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + v.storedKey + ":" + v.serverKey; v.text != want {
		t.Fatalf("verifier = %q, want %q", v.text, want)
	}
	authMessage := clientFirstBare + "," + serverFirst + "," + clientFinalBare
	storedKey, _ := base64.StdEncoding.DecodeString(v.storedKey)
	serverKey, _ := base64.StdEncoding.DecodeString(v.serverKey)
	p, _ := base64.StdEncoding.DecodeString(proof)

	clientSig := hmacSHA256(storedKey, authMessage)
	clientKey := make([]byte, len(p))
	for i := range p {
		clientKey[i] = p[i] ^ clientSig[i]
	}
	if got := sha256.Sum256(clientKey); !hmac.Equal(got[:], storedKey) {
		t.Errorf("StoredKey does not verify the RFC's client proof")
	}
	if got := base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage)); got != serverSignature {
		t.Errorf("ServerKey signs %s, want the RFC's %s", got, serverSignature)
	}
}

func TestVerifierFormat(t *testing.T) {
	v, err := newVerifier(newPassword())
	if err != nil {
		t.Fatal(err)
	}
	format := regexp.MustCompile(`^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$`)
	if !format.MatchString(v.text) {
		t.Errorf("verifier %q is not in PostgreSQL's format", v.text)
	}
	again, _ := newVerifier("same-password-12345")
	other, _ := newVerifier("same-password-12345")
	if again.text == other.text {
		t.Error("two verifiers of one password share a salt")
	}
	for _, bad := range []string{"", "pässword", "tab\there"} {
		if _, err := newVerifier(bad); err == nil {
			t.Errorf("newVerifier accepted a password that would need SASLprep or is empty")
		}
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		p := newPassword()
		if len(p) != 43 || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("password %d is not 43 URL-safe base64 characters", i)
		}
		if seen[p] {
			t.Fatal("password repeated")
		}
		seen[p] = true
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       `'plain'`,
		"it's":        `'it''s'`,
		`back\slash`:  `E'back\\slash'`,
		`both\'`:      `E'both\\'''`,
		"nul\x00byte": `'nulbyte'`,
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
