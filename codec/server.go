package codec

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// Access says who may call the codec server. Anyone who can reach it can decrypt
// payloads, so it is served on loopback (or behind authentication) and answers only:
//   - requests addressed to one of Hosts (the Host header, compared without case; an
//     entry without a port allows every port of that name): a web
//     page under another name that resolves to loopback (DNS rebinding) is refused;
//   - from a browser, pages of one of Origins (the Web UI, opened as localhost or as
//     127.0.0.1); a request from any other page is refused, not just left without CORS
//     headers, so it cannot have effects the browser then hides.
//
// A server reachable from other machines also needs Auth: every request but a browser's
// preflight must carry an accepted bearer credential.
type Access struct {
	Hosts   []string
	Origins []string
	// Auth, when set, checks every request's credentials.
	Auth *Auth
	// Refused, when set, hears why a request was refused (never its credentials), for
	// the server's log.
	Refused func(r *http.Request, status int, reason string)
}

// LoopbackAccess allows the codec server on port codecPort to be called by a Web UI on
// uiPort, each addressed as 127.0.0.1 or localhost.
func LoopbackAccess(codecPort, uiPort string) Access {
	var a Access
	for _, h := range []string{"127.0.0.1", "localhost"} {
		a.Hosts = append(a.Hosts, h+":"+codecPort)
		a.Origins = append(a.Origins, "http://"+h+":"+uiPort)
	}
	return a
}

// hostAllowed matches the request's Host header against Hosts: an entry with a port
// matches only that host and port, one without matches the host on any port.
func (a Access) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if slices.Contains(a.Hosts, host) {
		return true
	}
	name, _, err := net.SplitHostPort(host)
	return err == nil && !strings.Contains(name, ":") && slices.Contains(a.Hosts, name)
}

// Handler serves the codec over HTTP for the Web UI (POST /encode and /decode) to the
// callers a allows.
func Handler(c converter.PayloadCodec, a Access) http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(c)
	refuse := func(w http.ResponseWriter, r *http.Request, status int, reason, answer string) {
		if a.Refused != nil {
			a.Refused(r, status, reason)
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyturn codec"`)
		}
		http.Error(w, answer, status)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			refuse(w, r, http.StatusMisdirectedRequest, "unexpected Host header", "codec server: unexpected Host header; call it by the address keyturn printed")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if !slices.Contains(a.Origins, origin) {
				refuse(w, r, http.StatusForbidden, "origin not allowed", "codec server: origin not allowed")
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			// A browser's preflight carries no credentials; the request after it must.
			w.WriteHeader(http.StatusOK)
			return
		}
		if a.Auth != nil {
			if err := a.Auth.Check(r); err != nil {
				refuse(w, r, http.StatusUnauthorized, err.Error(), "codec server: authentication required")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
