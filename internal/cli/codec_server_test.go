package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// codecFixture is a running `keyturn codec-server` with its files and an identity
// provider's JWKS.
type codecFixture struct {
	dir, keyFile, tokenFile string
	oldKey, newKey          []byte
	url, host               string
	roots                   *x509.CertPool
	idp                     *rsa.PrivateKey
	jwksURL                 string
	out                     *testenv.SyncBuffer
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as a Kubernetes Secret volume updates
		t.Fatal(err)
	}
}

func randomKey(t *testing.T) []byte {
	k := make([]byte, codec.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// selfSigned writes a certificate for codec.test and 127.0.0.1 and returns a pool that
// trusts it.
func selfSigned(t *testing.T, dir string) (cert, key string, roots *x509.CertPool) {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "codec.test"},
		DNSNames: []string{"codec.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(priv)
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	parsed, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(parsed)
	return cert, key, roots
}

func startCodecServer(t *testing.T) *codecFixture {
	t.Helper()
	f := &codecFixture{dir: t.TempDir(), oldKey: randomKey(t), newKey: randomKey(t), out: &testenv.SyncBuffer{}}
	f.keyFile, f.tokenFile = filepath.Join(f.dir, "codec.key"), filepath.Join(f.dir, "token")
	writeFile(t, f.keyFile, hex.EncodeToString(f.newKey)+"\n"+hex.EncodeToString(f.oldKey)+"\n")
	writeFile(t, f.tokenFile, "static-token-1\n")
	cert, key, roots := selfSigned(t, f.dir)
	f.roots = roots

	f.idp, _ = rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.idp.PublicKey, KeyID: "idp-1", Algorithm: "RS256", Use: "sig"}}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(idp.Close)
	f.jwksURL = idp.URL

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args := []string{"codec-server", "--listen", "127.0.0.1:0", "--codec-key-file", f.keyFile, "--tls-cert", cert, "--tls-key", key,
		"--token-file", f.tokenFile, "--jwks-url", f.jwksURL, "--jwt-issuer", "https://idp.test", "--jwt-audience", "temporal-ui",
		"--allow-host", "codec.test", "--allow-origin", "https://ui.test"}
	go func() { done <- Execute(ctx, args, strings.NewReader(""), f.out, f.out) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("codec-server exited %d on shutdown:\n%s", code, f.out.String())
		}
	})
	listening := regexp.MustCompile(`listening on https://127\.0\.0\.1:(\d+) for hosts codec.test`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listening.FindStringSubmatch(f.out.String()); m != nil {
			f.url, f.host = "https://127.0.0.1:"+m[1], "codec.test:"+m[1]
			return f
		}
		select {
		case code := <-done:
			t.Fatalf("codec-server exited %d:\n%s", code, f.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("codec-server did not say it listens:\n%s", f.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remote is the SDK's remote codec (what the temporal CLI uses) against the server, with
// modify setting the request's credentials and headers.
func (f *codecFixture) remote(modify func(*http.Request)) converter.PayloadCodec {
	return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: f.url,
		Client:   http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots, ServerName: "codec.test"}}, Timeout: 10 * time.Second},
		ModifyRequest: func(r *http.Request) error {
			r.Host = f.host
			modify(r)
			return nil
		},
	})
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func (f *codecFixture) jwt(t *testing.T, signer *rsa.PrivateKey, iss, aud string, exp time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: signer, KeyID: "idp-1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: iss, Subject: "alice@example.com", Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func sealedWith(t *testing.T, key []byte, data string) []*commonpb.Payload {
	t.Helper()
	c, _ := codec.New(key)
	p, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(data)}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCodecServerDecodesOnlyForAuthenticatedCallersOverTLS(t *testing.T) {
	f := startCodecServer(t)
	old := sealedWith(t, f.oldKey, `"from-an-older-history"`)

	// The token file's token decodes a payload sealed with the older key.
	got, err := f.remote(bearer("static-token-1")).Decode(old)
	if err != nil || string(got[0].GetData()) != `"from-an-older-history"` {
		t.Fatalf("decode with the token: %v %v", got, err)
	}
	// Encoding uses the first key of the file.
	sealed, err := f.remote(bearer("static-token-1")).Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := codec.New(f.newKey); func() error { _, err := c.Decode(sealed); return err }() != nil {
		t.Fatal("encode did not use the first key of the file")
	}

	valid := f.jwt(t, f.idp, "https://idp.test", "temporal-ui", time.Now().Add(time.Hour))
	if _, err := f.remote(bearer(valid)).Decode(old); err != nil {
		t.Fatalf("decode with a valid access token: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	refused := map[string]func(*http.Request){
		"no credential":     func(*http.Request) {},
		"wrong token":       bearer("static-token-2"),
		"basic auth":        func(r *http.Request) { r.SetBasicAuth("u", "static-token-1") },
		"expired token":     bearer(f.jwt(t, f.idp, "https://idp.test", "temporal-ui", time.Now().Add(-time.Minute))),
		"other issuer":      bearer(f.jwt(t, f.idp, "https://evil.test", "temporal-ui", time.Now().Add(time.Hour))),
		"other audience":    bearer(f.jwt(t, f.idp, "https://idp.test", "other-app", time.Now().Add(time.Hour))),
		"signed by another": bearer(f.jwt(t, other, "https://idp.test", "temporal-ui", time.Now().Add(time.Hour))),
		"not a JWT":         bearer("not.a.jwt"),
	}
	for name, modify := range refused {
		if _, err := f.remote(modify).Decode(old); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Errorf("%s: decode = %v, want Unauthorized (401)", name, err)
		}
	}
	for _, reason := range []string{"expired", "wrong issuer", "wrong audience", "signature not valid", "no bearer token"} {
		if !strings.Contains(f.out.String(), reason) {
			t.Errorf("the log does not say %q:\n%s", reason, f.out.String())
		}
	}
	if strings.Contains(f.out.String(), "static-token") || strings.Contains(f.out.String(), valid[:20]) {
		t.Errorf("the log holds a credential:\n%s", f.out.String())
	}
	// Nor a key, nor what the server decrypted: the log is an output channel like any other.
	for what, value := range map[string]string{"the new key": hex.EncodeToString(f.newKey), "the old key": hex.EncodeToString(f.oldKey), "a decrypted payload": "from-an-older-history"} {
		if strings.Contains(f.out.String(), value) {
			t.Errorf("the log holds %s", what)
		}
	}

	// Host and Origin allow-lists; a preflight needs no credential.
	for name, tc := range map[string]struct {
		host, origin, method string
		status               int
	}{
		"UI preflight":      {f.host, "https://ui.test", http.MethodOptions, http.StatusOK},
		"other page":        {f.host, "https://evil.test", http.MethodOptions, http.StatusForbidden},
		"other host":        {"evil.test:1", "", http.MethodPost, http.StatusMisdirectedRequest},
		"UI, no credential": {f.host, "https://ui.test", http.MethodPost, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(tc.method, f.url+"/decode", strings.NewReader(`{"payloads":[]}`))
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots, ServerName: "codec.test"}}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.status)
		}
	}

	// Plain HTTP to the TLS port gets nothing decoded.
	if resp, err := http.Post("http://127.0.0.1"+f.url[len("https://127.0.0.1"):]+"/decode", "application/json", strings.NewReader(`{}`)); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS port was answered 200")
		}
	}
}

func TestCodecServerTakesRotatedKeysAndTokensWithoutARestart(t *testing.T) {
	f := startCodecServer(t)
	newest := randomKey(t)
	writeFile(t, f.keyFile, hex.EncodeToString(newest)+"\n"+hex.EncodeToString(f.newKey)+"\n"+hex.EncodeToString(f.oldKey)+"\n")
	writeFile(t, f.tokenFile, "static-token-2\n")

	if _, err := f.remote(bearer("static-token-1")).Decode(sealedWith(t, f.oldKey, `"a"`)); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("the replaced token still works: %v", err)
	}
	r := f.remote(bearer("static-token-2"))
	if _, err := r.Decode(sealedWith(t, f.oldKey, `"a"`)); err != nil {
		t.Fatalf("the oldest key no longer decodes: %v", err)
	}
	sealed, err := r.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := codec.New(newest); func() error { _, err := c.Decode(sealed); return err }() != nil {
		t.Fatal("encode did not move to the new first key")
	}

	// A token file made readable by others, or removed, stops the token at once: an
	// operator revokes a leaked token that way.
	if err := os.Chmod(f.tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Decode(sealedWith(t, f.oldKey, `"a"`)); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("a token file others may read still lets its token in: %v", err)
	}
	if err := os.Remove(f.tokenFile); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Decode(sealedWith(t, f.oldKey, `"a"`)); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("a removed token file still lets its token in: %v", err)
	}
	if !strings.Contains(f.out.String(), "codec token file changed and is refused") || strings.Contains(f.out.String(), "static-token-2") {
		t.Errorf("the refused token file is not reported (or the token is echoed):\n%s", f.out.String())
	}
	writeFile(t, f.tokenFile, "static-token-2\n")
	if _, err := r.Decode(sealedWith(t, f.oldKey, `"a"`)); err != nil {
		t.Fatalf("the token file put back does not let its token in: %v", err)
	}

	// A broken key file is reported and the keys before stay in use.
	writeFile(t, f.keyFile, "not a key\n")
	if _, err := r.Decode(sealedWith(t, newest, `"b"`)); err != nil {
		t.Fatalf("a broken key file stopped decoding: %v", err)
	}
	if !strings.Contains(f.out.String(), "codec key file changed but was not taken") || strings.Contains(f.out.String(), "not a key") {
		t.Errorf("the broken key file is not reported (or is echoed):\n%s", f.out.String())
	}
}

func TestCodecServerRefusesToStartWithoutItsSafeguards(t *testing.T) {
	dir := t.TempDir()
	keyFile, token, open := filepath.Join(dir, "k"), filepath.Join(dir, "t"), filepath.Join(dir, "open")
	writeFile(t, keyFile, hex.EncodeToString(randomKey(t))+"\n")
	writeFile(t, token, "tok\n")
	if err := os.WriteFile(open, []byte("tok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, key, _ := selfSigned(t, dir)
	base := []string{"codec-server", "--listen", "127.0.0.1:0", "--codec-key-file", keyFile}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no auth":           {[]string{"--tls-cert", cert, "--tls-key", key, "--allow-host", "h"}, "needs authentication"},
		"no host":           {[]string{"--tls-cert", cert, "--tls-key", key, "--token-file", token}, "no --allow-host"},
		"no TLS":            {[]string{"--token-file", token, "--allow-host", "h"}, "--plain-http when a proxy"},
		"TLS and plain":     {[]string{"--tls-cert", cert, "--tls-key", key, "--plain-http", "--token-file", token, "--allow-host", "h"}, "--plain-http when a proxy"},
		"key without cert":  {[]string{"--tls-key", key, "--token-file", token, "--allow-host", "h"}, "go together"},
		"bad cert":          {[]string{"--tls-cert", keyFile, "--tls-key", key, "--token-file", token, "--allow-host", "h"}, "TLS certificate"},
		"open token file":   {[]string{"--tls-cert", cert, "--tls-key", key, "--token-file", open, "--allow-host", "h"}, "chmod 600"},
		"JWKS, no issuer":   {[]string{"--tls-cert", cert, "--tls-key", key, "--jwks-url", "https://idp.test/jwks", "--jwt-audience", "a", "--allow-host", "h"}, "--jwt-issuer and --jwt-audience"},
		"JWKS, no audience": {[]string{"--tls-cert", cert, "--tls-key", key, "--jwks-url", "https://idp.test/jwks", "--jwt-issuer", "https://idp.test", "--allow-host", "h"}, "any token of that issuer"},
	} {
		out := &testenv.SyncBuffer{}
		code := Execute(context.Background(), append(append([]string{}, base...), tc.args...), strings.NewReader(""), out, out)
		if code != 1 || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "listening") {
			t.Errorf("%s: exit %d, want 1 with %q:\n%s", name, code, tc.want, out.String())
		}
	}
}
