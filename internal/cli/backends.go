package cli

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/stores/awssm"
	"github.com/keyturn/keyturn/stores/file"
	"github.com/keyturn/keyturn/stores/vaultkv"
)

// backends are the stores a worker can reach from its environment: the file store, Vault
// when VAULT_ADDR is set (auth from VAULT_TOKEN or KEYTURN_VAULT_AUTH_METHOD and friends),
// and AWS Secrets Manager through the standard AWS chain (AWS_REGION, profiles, web
// identity, instance roles, AWS_ENDPOINT_URL). Vault and AWS are opened on first use.
// Every call they and the rotators make is a span on tp (nil: none).
func backends(store *file.Store, logger *slog.Logger, tp trace.TracerProvider) binding.Backends {
	b := binding.Backends{File: store, TracerProvider: tp}
	if os.Getenv("VAULT_ADDR") != "" {
		b.Vault = func(ctx context.Context, mount string) (binding.FieldStore, error) {
			cfg, err := vaultkv.ConfigFromEnv()
			if err != nil {
				return nil, err
			}
			cfg.Mount, cfg.Logger, cfg.TracerProvider = mount, logger, tp
			return vaultkv.New(ctx, cfg)
		}
	}
	b.AWS = func(ctx context.Context) (aws.Config, error) {
		return awsconfig.LoadDefaultConfig(ctx)
	}
	b.AWSSM = func(ctx context.Context) (binding.FieldStore, error) {
		return awssm.New(ctx, awssm.Config{NamePrefix: os.Getenv("KEYTURN_AWSSM_PREFIX"), TracerProvider: tp})
	}
	return b
}
