package codec

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyturn/keyturn/internal/privfile"
)

// AuthOptions say which credentials a standalone codec server accepts. Anyone it answers
// can decrypt every payload of the namespace, so at least one is required.
type AuthOptions struct {
	// TokenFile holds a bearer token (one line) for callers such as the temporal CLI
	// (`--codec-auth "Bearer ..."`) or a proxy. The file is read again when it changes, so
	// a new token takes effect without a restart. Mode 0600: a file others may read is
	// refused.
	TokenFile string
	// JWKSURL, Issuer and Audience validate the access token the Temporal Web UI forwards
	// (its codec setting "pass the user access token"): signed by a key of the JWKS,
	// issued by Issuer, for Audience (when set), not expired.
	JWKSURL  string
	Issuer   string
	Audience string
}

// Auth checks a request's bearer credential: the token of TokenFile, or an access token
// that the JWKS validates.
type Auth struct {
	token    *watchedFile[string]
	verifier *oidc.IDTokenVerifier
}

// NewAuth prepares the checks o asks for; the JWKS is fetched when the first token needs
// it, and again when a token names a key it does not hold.
func NewAuth(ctx context.Context, o AuthOptions) (*Auth, error) {
	a := &Auth{}
	if o.TokenFile == "" && o.JWKSURL == "" {
		return nil, errors.New("the codec server needs authentication: --token-file, or --jwks-url with --jwt-issuer (both may be given)")
	}
	if o.TokenFile != "" {
		a.token = &watchedFile[string]{path: o.TokenFile, load: loadToken}
		if _, err := a.token.get(); err != nil {
			return nil, err
		}
	}
	if o.JWKSURL != "" {
		if o.Issuer == "" {
			return nil, errors.New("--jwks-url needs --jwt-issuer: the issuer the access tokens must name")
		}
		keys := oidc.NewRemoteKeySet(ctx, o.JWKSURL)
		a.verifier = oidc.NewVerifier(o.Issuer, keys, &oidc.Config{
			ClientID:             o.Audience,
			SkipClientIDCheck:    o.Audience == "",
			SupportedSigningAlgs: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.EdDSA},
		})
	}
	return a, nil
}

// Check returns nil when r carries an accepted credential, else why not (never the
// credential itself).
func (a *Auth) Check(r *http.Request) error {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	bearer = strings.TrimSpace(bearer)
	if !ok || bearer == "" {
		return errors.New("no bearer token")
	}
	if a.token != nil {
		want, err := a.token.get()
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(bearer), []byte(want)) == 1 {
			return nil
		}
	}
	if a.verifier == nil {
		return errors.New("bearer token does not match the token file")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if _, err := a.verifier.Verify(ctx, bearer); err != nil {
		return fmt.Errorf("access token refused: %s", tokenProblem(err))
	}
	return nil
}

// tokenProblem says why a token was refused in a few words: the library's errors may
// quote claims, which are not secret but need not reach a log either.
func tokenProblem(err error) string {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return "expired"
	case strings.Contains(msg, "issued by a different provider"):
		return "wrong issuer"
	case strings.Contains(msg, "audience"):
		return "wrong audience"
	case strings.Contains(msg, "signature"), strings.Contains(msg, "key"):
		return "signature not valid for the JWKS"
	case strings.Contains(msg, "malformed"):
		return "malformed"
	default:
		return "not valid"
	}
}

// loadToken reads a token file: one line, mode 0600.
func loadToken(path string, data []byte) (string, error) {
	token := strings.TrimSpace(string(data))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("token file %s must hold one non-empty line", path)
	}
	return token, nil
}

// watchedFile is a private file read again when its modification time or size changes,
// so a rotated token or key file takes effect without a restart. A file others may read
// is refused. When a changed file does not load, the last good value stays.
type watchedFile[T any] struct {
	path string
	load func(path string, data []byte) (T, error)
	// warn hears, once per change, why a changed file was not taken.
	warn func(error)

	mu      sync.Mutex
	loaded  bool
	value   T
	modTime time.Time
	size    int64
	// badMod and badSize are the last change that did not load.
	badMod  time.Time
	badSize int64
}

func (w *watchedFile[T]) get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	if err != nil {
		if w.loaded {
			return w.value, nil
		}
		return w.value, fmt.Errorf("read %s: %w", w.path, err)
	}
	if w.loaded && info.ModTime().Equal(w.modTime) && info.Size() == w.size {
		return w.value, nil
	}
	if err = privfile.Check(w.path, info); err == nil {
		var data []byte
		if data, err = os.ReadFile(w.path); err == nil {
			var v T
			if v, err = w.load(w.path, data); err == nil {
				w.value, w.loaded, w.modTime, w.size = v, true, info.ModTime(), info.Size()
				return v, nil
			}
		}
	}
	if w.loaded {
		// Keep serving with the last good file, say so once, and try the next change.
		if !info.ModTime().Equal(w.badMod) || info.Size() != w.badSize {
			w.badMod, w.badSize = info.ModTime(), info.Size()
			if w.warn != nil {
				w.warn(fmt.Errorf("%w; still using the version read before", err))
			}
		}
		return w.value, nil
	}
	return w.value, err
}
