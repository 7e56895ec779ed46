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
	// issued by Issuer, for Audience, not expired. All three go together.
	JWKSURL  string
	Issuer   string
	Audience string
	// Warn hears when a changed token file is refused.
	Warn func(error)
}

// jwksFetchTimeout bounds one fetch of the identity provider's keys.
const jwksFetchTimeout = 10 * time.Second

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
		a.token = &watchedFile[string]{path: o.TokenFile, load: loadToken, failClosed: true, warn: o.Warn}
		if _, err := a.token.get(); err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
	}
	if o.JWKSURL != "" {
		if o.Issuer == "" || o.Audience == "" {
			return nil, errors.New("--jwks-url needs --jwt-issuer and --jwt-audience: the issuer and audience the access tokens must name " +
				"(without an audience any token of that issuer, for any application, would be accepted)")
		}
		// A JWKS endpoint that hangs must not hold every later check: each fetch is bounded.
		fetch := oidc.ClientContext(ctx, &http.Client{Timeout: jwksFetchTimeout})
		keys := oidc.NewRemoteKeySet(fetch, o.JWKSURL)
		a.verifier = oidc.NewVerifier(o.Issuer, keys, &oidc.Config{
			ClientID:             o.Audience,
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
	case strings.Contains(msg, "fetching keys"), strings.Contains(msg, "get keys"):
		return "the identity provider's keys could not be fetched"
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

// watchedFile is a private file read again when it changes (another file, modification
// time or size), so a rotated token or key file takes effect without a restart. A file
// others may read is refused. When the file changes into one that does not load, or goes
// away, a failClosed file answers with the error (a token must stop working when it is
// removed), and another keeps the last good value (keys that still decrypt older
// payloads); either way warn hears of it once per change.
type watchedFile[T any] struct {
	path       string
	load       func(path string, data []byte) (T, error)
	failClosed bool
	warn       func(error)

	mu     sync.Mutex
	loaded bool
	value  T
	info   os.FileInfo // of the version loaded
	bad    os.FileInfo // of the last change that did not load; nil after a good one
	badErr error
}

func (w *watchedFile[T]) get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var zero T
	info, err := os.Stat(w.path)
	if err == nil && w.loaded && sameVersion(info, w.info) {
		return w.value, nil
	}
	if err == nil && w.bad != nil && sameVersion(info, w.bad) {
		err = w.badErr // a change already tried and reported
	} else if err == nil {
		if err = privfile.Check(w.path, info); err == nil {
			var data []byte
			if data, err = os.ReadFile(w.path); err == nil {
				var v T
				if v, err = w.load(w.path, data); err == nil {
					w.value, w.loaded, w.info, w.bad, w.badErr = v, true, info, nil, nil
					return v, nil
				}
			}
		}
		w.bad, w.badErr = info, err
		w.report(err)
	} else {
		if w.bad != nil || w.badErr == nil || w.badErr.Error() != err.Error() {
			w.bad, w.badErr = nil, err
			w.report(err)
		}
	}
	if !w.loaded || w.failClosed {
		return zero, err
	}
	return w.value, nil
}

// report tells warn about a change that was not taken, once the file had loaded before.
func (w *watchedFile[T]) report(err error) {
	if !w.loaded || w.warn == nil {
		return
	}
	if w.failClosed {
		w.warn(fmt.Errorf("%w; it is refused until the file is fixed", err))
	} else {
		w.warn(fmt.Errorf("%w; still using the version read before", err))
	}
}

// sameVersion reports whether two stats are of the same version of a file: the same file
// (a Kubernetes Secret update or a rename puts a new one in place), time, size and mode.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size() && a.Mode() == b.Mode()
}
