package vaultkv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
)

func TestConfigFromEnv(t *testing.T) {
	for k, v := range map[string]string{
		"VAULT_ADDR": "https://vault.example:8200", "VAULT_TOKEN": "tok", "VAULT_NAMESPACE": "team",
		"VAULT_CACERT": "/ca.pem", "VAULT_CLIENT_CERT": "/c.pem", "VAULT_CLIENT_KEY": "/k.pem",
		"VAULT_TLS_SERVER_NAME": "vault.internal", "VAULT_SKIP_VERIFY": "true",
		"KEYTURN_VAULT_AUTH_METHOD": "approle", "KEYTURN_VAULT_ROLE_ID": "rid", "KEYTURN_VAULT_SECRET_ID": "sid",
		"KEYTURN_VAULT_ROLE": "worker", "KEYTURN_VAULT_JWT_PATH": "/jwt", "KEYTURN_VAULT_AUTH_MOUNT": "ar",
	} {
		t.Setenv(k, v)
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	want := Config{
		Address: "https://vault.example:8200", Namespace: "team",
		Auth: Auth{Method: "approle", Token: secret.NewSensitive("tok"), RoleID: "rid", SecretID: secret.NewSensitive("sid"),
			Role: "worker", JWTPath: "/jwt", MountPath: "ar"},
		TLS: TLSConfig{CACert: "/ca.pem", ClientCert: "/c.pem", ClientKey: "/k.pem", ServerName: "vault.internal", Insecure: true},
	}
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", want) || !cfg.Auth.Token.Equal(want.Auth.Token) || !cfg.Auth.SecretID.Equal(want.Auth.SecretID) {
		t.Fatalf("ConfigFromEnv gave %+v, want %+v", cfg, want)
	}
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}

	t.Setenv("VAULT_SKIP_VERIFY", "maybe")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "VAULT_SKIP_VERIFY") {
		t.Fatalf("a bad VAULT_SKIP_VERIFY gave %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Auth: Auth{Method: AuthAppRole},
		TLS:  TLSConfig{ClientCert: "/c.pem"},
	}.withDefaults()
	err := cfg.validate()
	if err == nil {
		t.Fatal("validate accepted an empty config")
	}
	for _, want := range []string{"VAULT_ADDR", "KEYTURN_VAULT_ROLE_ID", "KEYTURN_VAULT_SECRET_ID", "VAULT_CLIENT_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate error does not mention %s: %v", want, err)
		}
	}
	if err := (Config{Address: "http://x", Auth: Auth{Method: "ldap"}}).withDefaults().validate(); err == nil ||
		!strings.Contains(err.Error(), "KEYTURN_VAULT_AUTH_METHOD") {
		t.Errorf("unknown method: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{Address: "http://x", Mount: "/kv/", Auth: Auth{Method: AuthKubernetes, Role: "r"}}.withDefaults()
	if cfg.Mount != "kv" || cfg.StagingPrefix != DefaultStagingPrefix || cfg.Timeout != DefaultTimeout ||
		cfg.Auth.MountPath != "kubernetes" || cfg.Auth.JWTPath != DefaultKubernetesJWTPath {
		t.Fatalf("defaults are %+v", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

func TestNewRefusesAnUnreachableVault(t *testing.T) {
	_, err := New(t.Context(), Config{Address: "http://127.0.0.1:1", Auth: Auth{Token: secret.NewSensitive("t")}, Timeout: 2e9})
	if !isUnavailable(err) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("New against a closed port: %v", err)
	}
}
