package consumer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/localca"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// certRotation rotates certificate secrets with the real localca rotator into a real file
// store, through the rotation engine's own steps, as the worker's activities run them.
type certRotation struct {
	dir   string
	store *file.Store
	ca    *x509.CertPool
	cfg   localca.Config
	n     int
}

func newCertRotation(t *testing.T) *certRotation {
	t.Helper()
	certPEM, keyPEM, err := localca.NewCA("Keyturn consumer test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := certs.PoolFromPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &certRotation{
		dir: dir, store: st, ca: pool,
		cfg: localca.Config{
			CACertPEM: certPEM, CAKeyPEM: keyPEM, CRLFile: filepath.Join(t.TempDir(), "ca.crl"),
			Request: certs.Request{CommonName: "api.keyturn.test", IPAddresses: []string{"127.0.0.1"}, TTL: time.Hour},
		},
	}
}

// rotate makes, tests and promotes a new certificate for id, then revokes the one it
// replaced, and returns the new certificate's serial.
func (r *certRotation) rotate(t *testing.T, id secret.ID) string {
	t.Helper()
	ctx := t.Context()
	rot, err := localca.New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	steps := rotation.Steps{SecretID: id, Rotator: rot, Store: r.store}
	r.n++
	token := secret.VersionToken(fmt.Sprintf("run-%d", r.n))
	created, err := steps.Create(ctx, token)
	if err != nil {
		t.Fatalf("create %s: %v", token, err)
	}
	if err := steps.Test(ctx, token); err != nil {
		t.Fatalf("test %s: %v", token, err)
	}
	promoted, err := steps.Promote(ctx, token)
	if err != nil {
		t.Fatalf("promote %s: %v", token, err)
	}
	if promoted.Previous != nil {
		if err := steps.Revoke(ctx, *promoted.Previous, &promoted.Current); err != nil {
			t.Fatalf("revoke the previous certificate: %v", err)
		}
	}
	return created.Version.Metadata[certs.MetadataSerial]
}

// peerSerial is the serial of the certificate the other end presented.
func peerSerial(t *testing.T, cs *tls.ConnectionState) string {
	t.Helper()
	if cs == nil || len(cs.PeerCertificates) == 0 {
		t.Fatal("no peer certificate")
	}
	return certs.FormatSerial(cs.PeerCertificates[0].SerialNumber)
}

// serveTLS serves HTTPS on 127.0.0.1 with cfg until the test ends; the handler answers
// with the serial of the client's certificate, if it sent one.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: cfg,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) > 0 {
				_, _ = io.WriteString(w, certs.FormatSerial(r.TLS.PeerCertificates[0].SerialNumber))
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "") // the certificate comes from cfg's hooks
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// get makes one request and returns the serial the server presented and the body.
func get(t *testing.T, c *http.Client, url string) (serverSerial, body string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return peerSerial(t, resp.TLS), string(b)
}

func client(pool *x509.CertPool, keepAlive bool, getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: !keepAlive,
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, GetClientCertificate: getCert},
	}}
}

// A real HTTPS server serves the certificate Keyturn rotates: the new one from the first
// handshake after the cache reads it; a connection set up before keeps the old one.
func TestTLSServerPicksUpARotatedCertificate(t *testing.T) {
	rot := newCertRotation(t)
	const id = "prod/api/tls"
	first := rot.rotate(t, id)

	src, err := OpenFile(rot.dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, clock, rec := newTestCache(t, src, Options{TTL: time.Minute, Jitter: -1, MaxStale: 10 * time.Minute})
	// The hooks judge expiry on the certificates' own clock, moved on below to past the
	// last good certificate's end.
	var (
		tlsMu     sync.Mutex
		tlsOffset time.Duration
		outage    []error
	)
	hooks := NewTLSCertificates(cache, id, TLSOptions{
		Now: func() time.Time { tlsMu.Lock(); defer tlsMu.Unlock(); return time.Now().Add(tlsOffset) },
		OnError: func(_ secret.ID, _ secret.VersionToken, err error) {
			tlsMu.Lock()
			defer tlsMu.Unlock()
			outage = append(outage, err)
		},
	})
	url := serveTLS(t, &tls.Config{GetCertificate: hooks.GetCertificate, MinVersion: tls.VersionTLS12})

	fresh := client(rot.ca, false, nil) // a new connection, so a new handshake, per request
	kept := client(rot.ca, true, nil)   // one connection kept open across the rotation
	if got, _ := get(t, fresh, url); got != first {
		t.Fatalf("server presented %s, want the first certificate %s", got, first)
	}
	if got, _ := get(t, kept, url); got != first {
		t.Fatalf("server presented %s on the kept connection, want %s", got, first)
	}

	// The version is parsed once: handshakes of one version share one tls.Certificate.
	a, err := hooks.Certificate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := hooks.Certificate(t.Context()); a != b {
		t.Fatal("the same version was parsed again")
	}

	second := rot.rotate(t, id)
	if second == first {
		t.Fatal("the rotation made no new certificate")
	}
	if got, _ := get(t, fresh, url); got != first {
		t.Fatalf("within the cache's TTL the server presented %s, want still %s", got, first)
	}
	clock.Advance(time.Minute + time.Second)
	if got, _ := get(t, fresh, url); got != second {
		t.Fatalf("after the TTL the server presented %s, want the new certificate %s", got, second)
	}
	// The kept connection was set up with the first certificate and stays on it.
	if got, _ := get(t, kept, url); got != first {
		t.Fatalf("the kept connection shows %s, want the certificate it was set up with (%s)", got, first)
	}

	// The store is lost: the cache serves the last good value while MaxStale allows, and
	// handshakes go on with the second certificate.
	if err := os.RemoveAll(rot.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rot.dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if got, _ := get(t, fresh, url); got != second {
		t.Fatalf("with the store down the server presented %s, want the last good %s", got, second)
	}
	if n := len(rec.staleCalls()); n != 1 {
		t.Fatalf("OnStale was called %d times, want once", n)
	}

	// Past MaxStale the Cache gives up, but the last good certificate is still within its
	// validity: it is served, and OnError says so, naming the secret, not the key.
	clock.Advance(10 * time.Minute)
	if got, _ := get(t, fresh, url); got != second {
		t.Fatalf("past MaxStale the server presented %s, want the last good %s", got, second)
	}
	tlsMu.Lock()
	if len(outage) == 0 || !strings.Contains(outage[0].Error(), id) {
		t.Fatalf("OnError past MaxStale: %v, want a report naming %s", outage, id)
	}
	checkNoKey(t, outage[0], a)
	// Once that certificate has expired there is nothing to serve: the handshake fails.
	tlsOffset = 2 * time.Hour
	tlsMu.Unlock()
	if _, err := fresh.Get(url); err == nil {
		t.Fatal("a handshake with only an expired certificate succeeded")
	}
	_, err = hooks.Certificate(t.Context())
	if err == nil || !strings.Contains(err.Error(), id) {
		t.Fatalf("Certificate past MaxStale and expiry: %v, want an error naming %s", err, id)
	}
	checkNoKey(t, err, a)
}

// A client presents the certificate Keyturn rotates to a server that requires one
// (mutual TLS): after Invalidate its next connection presents the new certificate.
func TestTLSClientCertificateRotates(t *testing.T) {
	rot := newCertRotation(t)
	const serverID, clientID = "prod/api/tls", "prod/worker/client-tls"
	rot.rotate(t, serverID)
	first := rot.rotate(t, clientID)

	src, err := OpenFile(rot.dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, _, _ := newTestCache(t, src, Options{TTL: time.Hour, Jitter: -1})
	server := NewTLSCertificates(cache, serverID, TLSOptions{})
	url := serveTLS(t, &tls.Config{
		GetCertificate: server.GetCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      rot.ca,
		MinVersion:     tls.VersionTLS12,
	})

	hooks := NewTLSCertificates(cache, clientID, TLSOptions{})
	c := client(rot.ca, false, hooks.GetClientCertificate)
	if _, seen := get(t, c, url); seen != first {
		t.Fatalf("the server saw client certificate %q, want %s", seen, first)
	}

	// Without a certificate the server refuses the client: the hook is what gets it in.
	if _, err := client(rot.ca, false, nil).Get(url); err == nil {
		t.Fatal("a client without a certificate got in")
	}

	second := rot.rotate(t, clientID)
	cache.Invalidate(clientID) // e.g. after the server refused the old certificate
	if _, seen := get(t, c, url); seen != second {
		t.Fatalf("after Invalidate the server saw %q, want the new client certificate %s", seen, second)
	}
}

// A version that is no usable certificate: the last good certificate is served while it
// is valid, and OnError says why; with no good certificate before it, an error. Neither
// carries material.
func TestTLSBadVersionKeepsTheLastGoodCertificate(t *testing.T) {
	rot := newCertRotation(t)
	const id = "prod/api/tls"
	rot.rotate(t, id)
	src, err := OpenFile(rot.dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, _, _ := newTestCache(t, src, Options{TTL: time.Hour, Jitter: -1})
	var (
		mu      sync.Mutex
		reports []error
	)
	hooks := NewTLSCertificates(cache, id, TLSOptions{OnError: func(got secret.ID, _ secret.VersionToken, err error) {
		mu.Lock()
		defer mu.Unlock()
		if got == id {
			reports = append(reports, err)
		}
	}})
	good, err := hooks.Certificate(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// Someone writes a private key that belongs to another certificate.
	_, other, err := localca.NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := rot.store.Read(t.Context(), id, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	m[certs.FieldPrivateKey] = other
	if _, err := rot.store.Put(t.Context(), id, m, nil); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(id)
	got, err := hooks.Certificate(t.Context())
	if err != nil || got != good {
		t.Fatalf("Certificate with a broken version: %v; want the last good certificate", err)
	}
	// The broken version is parsed and reported once, not at every handshake.
	for range 3 {
		if got, err := hooks.Certificate(t.Context()); err != nil || got != good {
			t.Fatalf("Certificate with a broken version, again: %v; want the last good certificate", err)
		}
	}
	mu.Lock()
	if len(reports) != 1 || !strings.Contains(reports[0].Error(), "not the certificate's key") {
		t.Fatalf("OnError reports %v, want one saying the key does not match", reports)
	}
	checkNoKey(t, reports[0], good, other.Reveal())
	mu.Unlock()

	// A consumer starting now has no good certificate to fall back on.
	fresh := NewTLSCertificates(cache, id, TLSOptions{})
	_, err = fresh.Certificate(t.Context())
	if err == nil || !strings.Contains(err.Error(), id) {
		t.Fatalf("Certificate of a broken version with nothing before it: %v", err)
	}
	checkNoKey(t, err, good, other.Reveal())

	// Material that is no certificate at all says which field is missing.
	if _, err := rot.store.Put(t.Context(), id, secret.Material{"password": secret.NewSensitive("x")}, nil); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(id)
	if _, err := fresh.Certificate(t.Context()); err == nil || !strings.Contains(err.Error(), `no "certificate" field`) {
		t.Fatalf("Certificate of a password secret: %v", err)
	}
}

// checkNoKey fails if err holds the PEM of a private key: cert's, or any given.
func checkNoKey(t *testing.T, err error, cert *tls.Certificate, keys ...string) {
	t.Helper()
	der, mErr := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if mErr != nil {
		t.Fatal(mErr)
	}
	msg := fmt.Sprintf("%v %+v", err, err)
	own := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	for _, k := range append(keys, own) {
		for _, line := range strings.Split(k, "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
				t.Fatal("an error holds private key material")
			}
		}
	}
	if strings.Contains(msg, "PRIVATE KEY") {
		t.Fatal("an error holds a PEM private key")
	}
}
