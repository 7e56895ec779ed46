package codec

import (
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// Access says who may call the codec server. Anyone who can reach it can decrypt
// payloads, so it is served on loopback (or behind authentication) and answers only:
//   - requests addressed to one of Hosts (the Host header, compared without case): a web
//     page under another name that resolves to loopback (DNS rebinding) is refused;
//   - from a browser, pages of one of Origins (the Web UI, opened as localhost or as
//     127.0.0.1); a request from any other page is refused, not just left without CORS
//     headers, so it cannot have effects the browser then hides.
type Access struct {
	Hosts   []string
	Origins []string
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

// Handler serves the codec over HTTP for the Web UI (POST /encode and /decode) to the
// callers a allows.
func Handler(c *Codec, a Access) http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(a.Hosts, strings.ToLower(r.Host)) {
			http.Error(w, "codec server: unexpected Host header; call it by the address keyturn printed", http.StatusMisdirectedRequest)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if !slices.Contains(a.Origins, origin) {
				http.Error(w, "codec server: origin not allowed", http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		h.ServeHTTP(w, r)
	})
}
