package vaultkv

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/secret"
)

// Defaults applied by New.
const (
	// DefaultMount is the KV v2 mount a Config without one uses.
	DefaultMount = "secret"
	// DefaultStagingPrefix is where pending versions are kept under the mount.
	DefaultStagingPrefix = "keyturn-pending"
	// DefaultTimeout bounds one request to Vault.
	DefaultTimeout = 30 * time.Second
	// DefaultKubernetesJWTPath is the service account token a pod gets mounted.
	DefaultKubernetesJWTPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthJWT        = "jwt"
	AuthKubernetes = "kubernetes"
)

// Config says how to reach Vault and where the store keeps secrets.
type Config struct {
	// Address is Vault's URL, e.g. https://vault.example.com:8200.
	Address string
	// Namespace is a Vault Enterprise namespace; empty for none.
	Namespace string
	// Mount is the KV v2 mount, DefaultMount when empty.
	Mount string
	// StagingPrefix is the path under Mount where pending versions wait, away from
	// consumers; DefaultStagingPrefix when empty. Secret IDs must not start with it.
	StagingPrefix string
	// Paths maps a secret ID to its consumer path under Mount when the two differ (the
	// inventory's store path). A secret not listed uses its ID.
	Paths map[secret.ID]string
	// Auth is how the store logs in.
	Auth Auth
	// TLS configures HTTPS to Vault.
	TLS TLSConfig
	// Timeout bounds one request; DefaultTimeout when zero.
	Timeout time.Duration
	// Logger receives token renewal problems; slog.Default() when nil. Nothing secret is
	// ever logged.
	Logger *slog.Logger
	// TracerProvider, when set, gets a client span for each request to Vault
	// (telemetry/httpspans: method, host and path, no query, headers or bodies); nil
	// traces nothing.
	TracerProvider trace.TracerProvider
}

// Auth says how to log in to Vault.
type Auth struct {
	// Method is AuthToken, AuthAppRole, AuthJWT or AuthKubernetes; AuthToken when empty.
	Method string
	// Token is the Vault token for AuthToken.
	Token secret.Sensitive
	// RoleID and SecretID log in with AuthAppRole.
	RoleID   string
	SecretID secret.Sensitive
	// Role is the role to log in as with AuthJWT and AuthKubernetes.
	Role string
	// JWT is the token to present with AuthJWT (or AuthKubernetes). JWTPath, when set, is
	// read at every login instead, since projected service account tokens are rotated.
	JWT     secret.Sensitive
	JWTPath string
	// MountPath is where the auth method is mounted; the method's name when empty.
	MountPath string
}

// TLSConfig configures HTTPS to Vault.
type TLSConfig struct {
	// CACert is a PEM file of CAs to trust instead of the system's.
	CACert string
	// ClientCert and ClientKey are a PEM client certificate and key, for mutual TLS.
	ClientCert string
	ClientKey  string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// Insecure skips certificate verification. Only for development.
	Insecure bool
}

// ConfigFromEnv reads the configuration from Vault's standard environment variables
// (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_CERT,
// VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY) and Keyturn's for other
// auth methods (KEYTURN_VAULT_AUTH_METHOD, KEYTURN_VAULT_ROLE_ID,
// KEYTURN_VAULT_SECRET_ID, KEYTURN_VAULT_ROLE, KEYTURN_VAULT_JWT_PATH,
// KEYTURN_VAULT_AUTH_MOUNT). Mount and StagingPrefix are left for the caller.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Address:   os.Getenv("VAULT_ADDR"),
		Namespace: os.Getenv("VAULT_NAMESPACE"),
		Auth: Auth{
			Method:    os.Getenv("KEYTURN_VAULT_AUTH_METHOD"),
			Token:     secret.NewSensitive(os.Getenv("VAULT_TOKEN")),
			RoleID:    os.Getenv("KEYTURN_VAULT_ROLE_ID"),
			SecretID:  secret.NewSensitive(os.Getenv("KEYTURN_VAULT_SECRET_ID")),
			Role:      os.Getenv("KEYTURN_VAULT_ROLE"),
			JWTPath:   os.Getenv("KEYTURN_VAULT_JWT_PATH"),
			MountPath: os.Getenv("KEYTURN_VAULT_AUTH_MOUNT"),
		},
		TLS: TLSConfig{
			CACert:     os.Getenv("VAULT_CACERT"),
			ClientCert: os.Getenv("VAULT_CLIENT_CERT"),
			ClientKey:  os.Getenv("VAULT_CLIENT_KEY"),
			ServerName: os.Getenv("VAULT_TLS_SERVER_NAME"),
		},
	}
	if v := os.Getenv("VAULT_SKIP_VERIFY"); v != "" {
		insecure, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("vault config from environment: VAULT_SKIP_VERIFY must be true or false")
		}
		cfg.TLS.Insecure = insecure
	}
	return cfg, nil
}

// withDefaults returns cfg with empty fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Mount == "" {
		cfg.Mount = DefaultMount
	}
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	if cfg.StagingPrefix == "" {
		cfg.StagingPrefix = DefaultStagingPrefix
	}
	cfg.StagingPrefix = strings.Trim(cfg.StagingPrefix, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &cfg.Auth
	if a.Method == "" {
		a.Method = AuthToken
	}
	if a.MountPath == "" && a.Method != AuthToken {
		a.MountPath = a.Method
	}
	a.MountPath = strings.Trim(a.MountPath, "/")
	if a.Method == AuthKubernetes && a.JWTPath == "" && a.JWT.IsZero() {
		a.JWTPath = DefaultKubernetesJWTPath
	}
	return cfg
}

// validate reports every problem at once, each naming the setting (and its environment
// variable) to fix.
func (cfg Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Address == "" {
		add("address is empty: set VAULT_ADDR, e.g. https://vault.example.com:8200")
	}
	if strings.Contains(cfg.Mount, "//") {
		add("mount %q has an empty segment", cfg.Mount)
	}
	if cfg.StagingPrefix == "" || strings.Contains(cfg.StagingPrefix, "//") {
		add("staging prefix %q is not a path", cfg.StagingPrefix)
	}
	for id, p := range cfg.Paths {
		if err := id.Validate(); err != nil {
			add("paths: %w", err)
		}
		if strings.Trim(p, "/") == "" || strings.Contains(p, "//") {
			add("paths: %s maps to %q, which is not a path", id, p)
		}
	}
	a := cfg.Auth
	switch a.Method {
	case AuthToken:
		if a.Token.IsZero() {
			add("auth method token needs a token: set VAULT_TOKEN")
		}
	case AuthAppRole:
		if a.RoleID == "" {
			add("auth method approle needs a role ID: set KEYTURN_VAULT_ROLE_ID")
		}
		if a.SecretID.IsZero() {
			add("auth method approle needs a secret ID: set KEYTURN_VAULT_SECRET_ID")
		}
	case AuthJWT, AuthKubernetes:
		if a.Role == "" {
			add("auth method %s needs a role: set KEYTURN_VAULT_ROLE", a.Method)
		}
		if a.JWT.IsZero() && a.JWTPath == "" {
			add("auth method %s needs a JWT: set KEYTURN_VAULT_JWT_PATH to a file holding it", a.Method)
		}
	default:
		add("auth method %q is unknown: use token, approle, jwt or kubernetes (KEYTURN_VAULT_AUTH_METHOD)", a.Method)
	}
	if (cfg.TLS.ClientCert == "") != (cfg.TLS.ClientKey == "") {
		add("TLS client certificate and key go together: set both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY, or neither")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("vault config: %w", errors.Join(errs...))
}
