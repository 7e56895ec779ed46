// Package apitest is a small API-key service for tests of the httpapi rotator and of
// everything above it. It behaves like the key management API of a typical SaaS (Stripe's
// is the model): an admin token creates and deletes keys, a key authenticates as itself,
// and POST requests honour Idempotency-Key. It runs in process on 127.0.0.1 and keeps
// everything in memory.
//
// Endpoints:
//
//	POST   /v1/keys       Authorization: Bearer <admin>  -> 201 {"data":{"id":"key_…","secret":"sk_…"}}
//	GET    /v1/whoami     Authorization: Bearer <secret> -> 200 {"key_id":"key_…"}, 401 unless live
//	DELETE /v1/keys/{id}  Authorization: Bearer <admin>  -> 204, 404 when unknown or already deleted
//	GET    /v1/keys/{id}  Authorization: Bearer <admin>  -> 200 {"data":{"id":"key_…","last_used_at":"<RFC 3339>"|null,"in_use":bool}},
//	                                                        404 when unknown or deleted
//
// A key is used when it authenticates a request (/v1/whoami); last_used_at is the time of
// its latest use, null before the first, and in_use says whether that was within the
// last InUseWindow (a minute by default), the way an API that judges for itself answers.
//
// A POST with an Idempotency-Key seen before gets the first response again, secret
// included, when its body is the same, and 422 when it differs. A wrong admin token gets
// 401; RefuseAdmin turns a right one into 403. FailNext makes requests fail with 503 (or
// FailNextWith, any status) before they are looked at.
package apitest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultInUseWindow is how recent a key's last use must be for in_use to be true.
const DefaultInUseWindow = time.Minute

// Request is what the server records of a request: never a header value that is a
// credential, never a body.
type Request struct {
	Method string
	Path   string
	// IdempotencyKey is the Idempotency-Key header, if any.
	IdempotencyKey string
}

// Server is a running test API. Its methods are safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	admin string

	mu          sync.Mutex
	keys        map[string]*key   // by ID
	bySecret    map[string]string // secret -> ID
	created     int
	idempotent  map[string]replay // by Idempotency-Key
	requests    []Request
	failures    int
	failStatus  int
	refuseAdmin bool
	inUseWindow time.Duration
}

type key struct {
	secret   string
	live     bool
	lastUsed time.Time // zero until the key authenticates a request
}

// replay is the response to an idempotent POST, kept to be sent again.
type replay struct {
	fingerprint [32]byte
	status      int
	body        []byte
}

// Start starts a server over plain HTTP on 127.0.0.1; it is closed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.srv = httptest.NewServer(s.handler())
	t.Cleanup(s.srv.Close)
	return s
}

// StartTLS is Start over HTTPS with a self-signed certificate that only Client trusts.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.srv = httptest.NewTLSServer(s.handler())
	t.Cleanup(s.srv.Close)
	return s
}

func newServer(t testing.TB) *Server {
	t.Helper()
	return &Server{
		admin:       "admin_" + rand.Text(),
		keys:        map[string]*key{},
		bySecret:    map[string]string{},
		idempotent:  map[string]replay{},
		inUseWindow: DefaultInUseWindow,
	}
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234, without a trailing slash.
func (s *Server) URL() string { return s.srv.URL }

// Client returns a client that trusts the server's certificate (for StartTLS).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AdminToken is the admin credential, random for each server.
func (s *Server) AdminToken() string { return s.admin }

// Live reports whether the key exists and has not been deleted.
func (s *Server) Live(keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	return ok && k.live
}

// Count is the number of live keys.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.keys {
		if k.live {
			n++
		}
	}
	return n
}

// Created is the number of keys ever created; an idempotent replay creates none.
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Requests returns every request received so far, in order, failed ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// FailNext makes the next n requests, whatever they are, fail with 503 Service
// Unavailable without any effect.
func (s *Server) FailNext(n int) { s.FailNextWith(n, http.StatusServiceUnavailable) }

// FailNextWith makes the next n requests fail with status without any effect.
func (s *Server) FailNextWith(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.failStatus = n, status
}

// RefuseAdmin makes requests with the right admin token get 403 Forbidden, as for an
// admin credential that lacks the privilege, until called with false.
func (s *Server) RefuseAdmin(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseAdmin = refuse
}

// InUseWindow sets how recent a key's last use must be for in_use to be true.
func (s *Server) InUseWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inUseWindow = d
}

// LastUsed is when the key last authenticated a request; zero if never or unknown.
func (s *Server) LastUsed(keyID string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[keyID]; ok {
		return k.lastUsed
	}
	return time.Time{}
}

// Delete deletes a key behind the client's back, as an operator in the API's console
// would; it reports whether the key was live.
func (s *Server) Delete(keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	if !ok || !k.live {
		return false
	}
	k.live = false
	delete(s.bySecret, k.secret)
	return true
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/keys", s.createKey)
	mux.HandleFunc("GET /v1/whoami", s.whoami)
	mux.HandleFunc("DELETE /v1/keys/{id}", s.deleteKey)
	mux.HandleFunc("GET /v1/keys/{id}", s.getKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")})
		fail := s.failures > 0
		status := s.failStatus
		if fail {
			s.failures--
		}
		s.mu.Unlock()
		if fail {
			writeError(w, status, "injected failure")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// adminOK checks the admin token and writes the refusal if it is not right.
func (s *Server) adminOK(w http.ResponseWriter, r *http.Request) bool {
	if bearer(r) != s.admin {
		writeError(w, http.StatusUnauthorized, "invalid admin token")
		return false
	}
	s.mu.Lock()
	refuse := s.refuseAdmin
	s.mu.Unlock()
	if refuse {
		writeError(w, http.StatusForbidden, "this token may not manage keys")
		return false
	}
	return true
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	if !s.adminOK(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, "unreadable body")
		return
	}
	if len(body) > 0 && !json.Valid(body) {
		writeError(w, http.StatusBadRequest, "the body is not JSON")
		return
	}
	fingerprint := sha256.Sum256(body)
	idem := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	defer s.mu.Unlock()
	if idem != "" {
		if prev, ok := s.idempotent[idem]; ok {
			if prev.fingerprint != fingerprint {
				writeError(w, http.StatusUnprocessableEntity, "Idempotency-Key reused with a different request")
				return
			}
			writeJSON(w, prev.status, prev.body)
			return
		}
	}
	id := "key_" + strings.ToLower(rand.Text()[:16])
	secret := "sk_" + rand.Text() + rand.Text()
	s.keys[id] = &key{secret: secret, live: true}
	s.bySecret[secret] = id
	s.created++
	out, _ := json.Marshal(map[string]any{"data": map[string]string{"id": id, "secret": secret}})
	if idem != "" {
		s.idempotent[idem] = replay{fingerprint: fingerprint, status: http.StatusCreated, body: out}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, ok := s.bySecret[bearer(r)]
	live := ok && s.keys[id].live
	if live {
		s.keys[id].lastUsed = time.Now().UTC()
	}
	s.mu.Unlock()
	if !live {
		writeError(w, http.StatusUnauthorized, "invalid API key")
		return
	}
	out, _ := json.Marshal(map[string]string{"key_id": id})
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if !s.adminOK(w, r) {
		return
	}
	if !s.Delete(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, "no such key")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getKey describes a key without its secret, as key listings of APIs do.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	if !s.adminOK(w, r) {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	k, ok := s.keys[id]
	live := ok && k.live
	var lastUsed *string
	inUse := false
	if live && !k.lastUsed.IsZero() {
		at := k.lastUsed.Format(time.RFC3339Nano)
		lastUsed = &at
		inUse = time.Since(k.lastUsed) < s.inUseWindow
	}
	s.mu.Unlock()
	if !live {
		writeError(w, http.StatusNotFound, "no such key")
		return
	}
	out, _ := json.Marshal(map[string]any{"data": map[string]any{"id": id, "last_used_at": lastUsed, "in_use": inUse}})
	writeJSON(w, http.StatusOK, out)
}

func bearer(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return token
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	out, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg}})
	writeJSON(w, status, out)
}

// CAPEM returns, in PEM, the certificate a StartTLS server presents: self-signed, so it
// is its own CA, and trusted by nothing else. It is what an inventory's
// httpapi.ca_file holds for an API behind a private CA.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}
