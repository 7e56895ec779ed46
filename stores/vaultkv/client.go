package vaultkv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/internal/vaulterr"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/telemetry/httpspans"
)

var _ stores.Store = (*Store)(nil)

// Store is the Vault KV v2 store. It is safe for concurrent use, also by several
// processes on one Vault: every change is serialized by check-and-set writes.
type Store struct {
	client  *api.Client
	addr    string
	mount   string
	staging string
	paths   map[secret.ID]string
	auth    Auth
	logger  *slog.Logger
	now     func() time.Time

	stopRenew context.CancelFunc
	renewDone chan struct{}
	closeOnce sync.Once
}

// New connects to Vault, logs in with cfg.Auth and, when the token can be renewed (or
// the auth method can log in again), keeps it alive in the background until Close.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		client:    client,
		addr:      cfg.Address,
		mount:     cfg.Mount,
		staging:   cfg.StagingPrefix,
		paths:     cfg.Paths,
		auth:      cfg.Auth,
		logger:    cfg.Logger,
		now:       time.Now,
		renewDone: make(chan struct{}),
	}
	login, err := s.login(ctx)
	if err != nil {
		return nil, err
	}
	renewCtx, cancel := context.WithCancel(context.Background())
	s.stopRenew = cancel
	go s.keepAlive(renewCtx, login)
	return s, nil
}

// Close stops the token renewal. It does not revoke the token: a worker that restarts
// with the same token (or logs in again) carries on.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopRenew()
		<-s.renewDone
	})
	return nil
}

// newClient builds an API client from cfg alone. api.DefaultConfig reads VAULT_*
// variables; the settings that matter are overwritten here so that a Config, not the
// process environment, decides where the store goes.
func newClient(cfg Config) (*api.Client, error) {
	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("vault client: %w", ac.Error)
	}
	ac.Address = cfg.Address
	ac.AgentAddress = ""
	ac.Timeout = cfg.Timeout
	ac.MaxRetries = 2
	if tr, ok := ac.HttpClient.Transport.(*http.Transport); ok {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	err := ac.ConfigureTLS(&api.TLSConfig{
		CACert:        cfg.TLS.CACert,
		ClientCert:    cfg.TLS.ClientCert,
		ClientKey:     cfg.TLS.ClientKey,
		TLSServerName: cfg.TLS.ServerName,
		Insecure:      cfg.TLS.Insecure,
	})
	if err != nil {
		return nil, fmt.Errorf("vault client TLS (check VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY): %w", err)
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// Only now: the API's configuration steps above need the bare *http.Transport.
	ac.HttpClient.Transport = httpspans.Transport(ac.HttpClient.Transport, cfg.TracerProvider, httpspans.SchemeHostPath)
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// login authenticates and sets the client's token. It returns the login's auth data for
// the lifetime watcher, or nil when there is nothing to watch.
func (s *Store) login(ctx context.Context) (*api.Secret, error) {
	a := s.auth
	if a.Method == AuthToken {
		s.client.SetToken(a.Token.Reveal())
		return s.lookupToken(ctx)
	}

	path := "auth/" + a.MountPath + "/login"
	body := map[string]any{}
	switch a.Method {
	case AuthAppRole:
		body["role_id"] = a.RoleID
		body["secret_id"] = a.SecretID.Reveal()
	case AuthJWT, AuthKubernetes:
		jwt := a.JWT.Reveal()
		if a.JWTPath != "" {
			// Read at every login: projected service account tokens are rotated on disk.
			b, err := os.ReadFile(a.JWTPath)
			if err != nil {
				return nil, fmt.Errorf("vault login (%s): read the JWT file named by KEYTURN_VAULT_JWT_PATH: %w", a.Method, err)
			}
			jwt = strings.TrimSpace(string(b))
		}
		body["role"] = a.Role
		body["jwt"] = jwt
	}
	sec, err := s.client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, fmt.Errorf("vault login (%s): %w", a.Method, s.explainLogin(err, path))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault login (%s) at %s: no token in the answer", a.Method, s.addr)
	}
	s.client.SetToken(sec.Auth.ClientToken)
	return sec, nil
}

// explainLogin says what a failed login usually means; Vault answers a wrong role or
// secret ID with 400, not 403.
func (s *Store) explainLogin(err error, path string) error {
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == 400 || re.StatusCode == 403) {
		return &vaulterr.Error{
			Msg: fmt.Sprintf("%s at %s refused the login (%d%s): check the role and its credentials, and that the auth method is mounted at %s (KEYTURN_VAULT_AUTH_MOUNT)",
				path, s.addr, re.StatusCode, vaulterr.Detail(re), s.auth.MountPath),
			Kinds: []error{ErrPermissionDenied},
			Cause: re,
		}
	}
	return s.explain(err, path, capUpdate)
}

// lookupToken asks Vault about a given token so renewal knows its TTL. A token whose
// policy does not allow lookup-self (no default policy) still works for the store; it
// just is not renewed.
func (s *Store) lookupToken(ctx context.Context) (*api.Secret, error) {
	sec, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 403 {
			s.logger.Warn("vault token lookup-self denied: the token is used as is and not renewed (attach the default policy, or check the token)",
				"vault_addr", s.addr)
			return nil, nil
		}
		return nil, fmt.Errorf("vault token lookup: %w", s.explain(err, "auth/token/lookup-self", capRead))
	}
	if sec == nil {
		return nil, nil
	}
	renewable, _ := sec.Data["renewable"].(bool)
	ttl := intField(sec.Data["ttl"])
	if !renewable || ttl <= 0 {
		return nil, nil
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   s.auth.Token.Reveal(),
		Renewable:     true,
		LeaseDuration: ttl,
	}}, nil
}

// keepAlive renews the token while it can and, for login methods, logs in again when it
// cannot (max TTL reached, renewal refused, a non-renewable token near its end).
func (s *Store) keepAlive(ctx context.Context, login *api.Secret) {
	defer close(s.renewDone)
	for {
		if login == nil || login.Auth == nil || login.Auth.LeaseDuration <= 0 {
			return // a token without TTL, or one we cannot look up: nothing to do
		}
		w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: login})
		if err != nil {
			s.logger.Warn("vault token renewal not started", "vault_addr", s.addr, "error", err)
			return
		}
		go w.Start()
		var doneErr error
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case doneErr = <-w.DoneCh():
				break watch
			case <-w.RenewCh():
			}
		}
		w.Stop()

		if s.auth.Method == AuthToken {
			s.logger.Warn("vault token can no longer be renewed (max TTL reached or renewal refused); the store fails once it expires: give the worker a new VAULT_TOKEN",
				"vault_addr", s.addr, "error", doneErr)
			return
		}
		login = s.relogin(ctx)
	}
}

// relogin logs in again, retrying with backoff until it works or the store closes.
func (s *Store) relogin(ctx context.Context) *api.Secret {
	wait := time.Second
	for {
		login, err := s.login(ctx)
		if err == nil {
			return login
		}
		s.logger.Warn("vault login failed; retrying", "vault_addr", s.addr, "method", s.auth.Method, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Client returns the store's logged-in API client, whose token the store keeps alive until
// Close, for other Vault engines the same worker uses (the PKI rotator).
func (s *Store) Client() *api.Client { return s.client }
