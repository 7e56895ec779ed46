package codec

import (
	"net/http"

	"go.temporal.io/sdk/converter"
)

// Handler serves the codec over HTTP for the Web UI (POST /encode and /decode), allowing
// the browser at uiOrigin to call it. Run it on loopback or behind authentication: anyone
// who can reach it can decrypt payloads.
func Handler(c *Codec, uiOrigin string) http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == uiOrigin {
			w.Header().Set("Access-Control-Allow-Origin", uiOrigin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		h.ServeHTTP(w, r)
	})
}
