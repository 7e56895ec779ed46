package agent

import (
	"context"
	"fmt"
	"os"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

// OpenSource opens the store the configuration names, through the consumer package's
// read path, so the agent reads exactly what a Go consumer would and needs the same read
// access. Close the source when done (it stops Vault's token renewal).
func OpenSource(ctx context.Context, s StoreConfig) (*consumer.StoreSource, error) {
	switch s.Type {
	case StoreFile:
		return consumer.OpenFile(s.Dir)
	case StoreVault:
		token := os.Getenv("VAULT_TOKEN")
		if s.TokenFile != "" {
			data, err := os.ReadFile(s.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("read Vault token file: %w", err)
			}
			token = strings.TrimSpace(string(data))
		}
		if token == "" {
			return nil, fmt.Errorf("no Vault token: the token file is empty or VAULT_TOKEN is unset")
		}
		return consumer.OpenVault(ctx, consumer.Vault{
			Address: s.Address, Token: secret.NewSensitive(token), Mount: s.Mount, StagingPrefix: s.StagingPrefix,
		})
	case StoreAWSSM:
		var opts []func(*awsconfig.LoadOptions) error
		if s.Region != "" {
			opts = append(opts, awsconfig.WithRegion(s.Region))
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
		return consumer.OpenAWS(cfg, s.NamePrefix)
	}
	return nil, fmt.Errorf("unknown store type %q", s.Type)
}
