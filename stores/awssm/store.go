package awssm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/telemetry/awsspans"
)

var _ stores.Store = (*Store)(nil)

// maxPrefixLen leaves room in AWS's 512-character name limit for a 200-character ID.
const maxPrefixLen = 300

// Config says which Secrets Manager to use and how secrets are named there. The zero
// value uses the SDK's default chain for everything and names secrets by their ID.
type Config struct {
	// Region is the AWS region. Empty: the SDK's chain (AWS_REGION, AWS_DEFAULT_REGION,
	// the profile's region).
	Region string
	// Endpoint overrides the Secrets Manager endpoint URL (a VPC endpoint, moto,
	// LocalStack). Empty: the SDK's own resolution, which honours AWS_ENDPOINT_URL and
	// AWS_ENDPOINT_URL_SECRETS_MANAGER.
	Endpoint string
	// Profile names a shared config profile. Empty: AWS_PROFILE, else "default".
	Profile string
	// NamePrefix is put before each secret ID to make the AWS secret name:
	// "keyturn/" + "prod/orders-db/app". Scope the IAM policy to it.
	NamePrefix string
	// TracerProvider, when set, gets a client span for each Secrets Manager call
	// (telemetry/awsspans: operation, region, status, never a value); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Store is the AWS Secrets Manager store. It is safe for concurrent use.
type Store struct {
	client *secretsmanager.Client
	prefix string
	// where names the endpoint or region in "unreachable" errors.
	where string
	now   func() time.Time
	// stageLocks serializes StagePending per secret within this process (see stage.go).
	stageLocks keyedLock
}

// New builds a Store from the standard AWS configuration chain (environment, shared
// config and credentials files, web identity, container and instance roles), with cfg's
// Region, Profile and Endpoint taking precedence when set.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := checkPrefix(cfg.NamePrefix); err != nil {
		return nil, fmt.Errorf("new AWS Secrets Manager store: %w", err)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(cfg.Endpoint))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("new AWS Secrets Manager store: load AWS configuration: %w", err)
	}
	return NewFromConfig(awsCfg, cfg)
}

// NewFromConfig builds a Store from an AWS configuration made by the caller (tests use
// mototest's). cfg's Region and Endpoint, when set, override awsCfg's.
func NewFromConfig(awsCfg aws.Config, cfg Config) (*Store, error) {
	if err := checkPrefix(cfg.NamePrefix); err != nil {
		return nil, fmt.Errorf("new AWS Secrets Manager store: %w", err)
	}
	region := cmp.Or(cfg.Region, awsCfg.Region)
	if region == "" {
		return nil, errors.New("new AWS Secrets Manager store: no AWS region: set the store's region or AWS_REGION")
	}
	client := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		o.Region = region
		if opt := awsspans.APIOption(cfg.TracerProvider); opt != nil {
			o.APIOptions = append(slices.Clip(o.APIOptions), opt)
		}
		if cfg.Endpoint != "" {
			// A client option outranks AWS_ENDPOINT_URL_SECRETS_MANAGER, which the SDK
			// would otherwise apply over the configuration's BaseEndpoint.
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	where := "region " + region
	if ep := cmp.Or(cfg.Endpoint, aws.ToString(awsCfg.BaseEndpoint)); ep != "" {
		where = "endpoint " + ep
	}
	return &Store{client: client, prefix: cfg.NamePrefix, where: where, now: time.Now}, nil
}

// SecretName returns the AWS secret name of a Keyturn secret ID: NamePrefix + id.
func (s *Store) SecretName(id secret.ID) (string, error) {
	if err := id.Validate(); err != nil {
		return "", err
	}
	return s.prefix + string(id), nil
}

// Read implements stores.Store.
func (s *Store) Read(ctx context.Context, id secret.ID, stage secret.Stage) (secret.Version, secret.Material, error) {
	label := Label(stage)
	if label == "" {
		return secret.Version{}, nil, fmt.Errorf("read %s: unknown stage %q", id, stage)
	}
	name, err := s.SecretName(id)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read: %w", err)
	}
	// Always by label: moto answers an unlabelled GetSecretValue with a stale version.
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String(label),
	})
	if isNotFound(err) || (err == nil && aws.ToString(out.VersionId) == placeholderVersionID) {
		return secret.Version{}, nil, fmt.Errorf("read %s: no %s version: %w", id, stage, stores.ErrNotFound)
	}
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read %s: %w", id, s.apiError("GetSecretValue", name, err))
	}
	v, d, err := open(id, out)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read %s: %w", id, err)
	}
	return v, d.material(), nil
}

// ReadVersion implements stores.Store. A version that holds no stage any more
// (superseded or discarded) is not found, even while AWS still keeps it.
func (s *Store) ReadVersion(ctx context.Context, id secret.ID, token secret.VersionToken) (secret.Version, secret.Material, error) {
	name, err := s.SecretName(id)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read version: %w", err)
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionId: aws.String(VersionID(token)),
	})
	if isNotFound(err) || (err == nil && len(stagesOf(out.VersionStages)) == 0) {
		return secret.Version{}, nil, fmt.Errorf("read version %s: version %q: %w", id, token, stores.ErrNotFound)
	}
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read version %s: %w", id, s.apiError("GetSecretValue", name, err))
	}
	v, d, err := open(id, out)
	if err != nil {
		return secret.Version{}, nil, fmt.Errorf("read version %s: %w", id, err)
	}
	if v.Token != token {
		// Only a hand-made version under a chosen VersionId could get here.
		return secret.Version{}, nil, fmt.Errorf("read version %s: version %q: its VersionId holds token %q: %w", id, token, v.Token, stores.ErrNotFound)
	}
	return v, d.material(), nil
}

// ListVersions implements stores.Store: the versions holding a stage, oldest first by
// number. Versions Keyturn did not write have number 0 and come first, by creation time.
func (s *Store) ListVersions(ctx context.Context, id secret.ID) ([]secret.Version, error) {
	name, err := s.SecretName(id)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	ids, err := s.stagedVersionIDs(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", id, err)
	}
	var out []secret.Version
	for _, vid := range ids {
		got, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(name), VersionId: aws.String(vid),
		})
		if isNotFound(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("list versions %s: %w", id, s.apiError("GetSecretValue", name, err))
		}
		if len(stagesOf(got.VersionStages)) == 0 {
			continue // lost its last stage since the listing
		}
		v, _, err := open(id, got)
		if err != nil {
			return nil, fmt.Errorf("list versions %s: %w", id, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list versions %s: %w", id, stores.ErrNotFound)
	}
	slices.SortFunc(out, func(a, b secret.Version) int {
		return cmp.Or(cmp.Compare(a.Number, b.Number), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Token, b.Token))
	})
	return out, nil
}

// stagedVersionIDs lists the VersionIds that hold one of Keyturn's stages, placeholder
// excluded.
func (s *Store) stagedVersionIDs(ctx context.Context, name string) ([]string, error) {
	var ids []string
	pages := secretsmanager.NewListSecretVersionIdsPaginator(s.client, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(name), IncludeDeprecated: aws.Bool(false),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err) {
			return nil, stores.ErrNotFound
		}
		if err != nil {
			// moto answers this call on a missing secret with HTTP 500 instead of
			// ResourceNotFoundException; when the service answered, ask DescribeSecret
			// before blaming it.
			var respErr *awshttp.ResponseError
			if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError {
				if st, derr := s.describe(ctx, name); derr == nil && !st.exists {
					return nil, stores.ErrNotFound
				}
			}
			return nil, s.apiError("ListSecretVersionIds", name, err)
		}
		for _, v := range page.Versions {
			vid := aws.ToString(v.VersionId)
			if vid != placeholderVersionID && len(stagesOf(v.VersionStages)) > 0 {
				ids = append(ids, vid)
			}
		}
	}
	return ids, nil
}

// open decodes a fetched version into its description and its decoded value, from which
// callers that need the material take it.
func open(id secret.ID, out *secretsmanager.GetSecretValueOutput) (secret.Version, decoded, error) {
	vid := aws.ToString(out.VersionId)
	if out.SecretString == nil {
		return secret.Version{}, decoded{}, fmt.Errorf("version %s holds binary data; Keyturn reads JSON strings only", vid)
	}
	d, err := decodeValue(*out.SecretString)
	if err != nil {
		return secret.Version{}, decoded{}, fmt.Errorf("version %s: %w", vid, err)
	}
	return d.version(id, vid, aws.ToTime(out.CreatedDate), out.VersionStages), d, nil
}

// checkPrefix accepts what AWS accepts in a secret name: letters, digits and /_+=.@-.
func checkPrefix(prefix string) error {
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("name prefix is longer than %d characters", maxPrefixLen)
	}
	for _, c := range prefix {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '/' || c == '_' || c == '+' || c == '=' || c == '.' || c == '@' || c == '-'
		if !ok {
			return fmt.Errorf("name prefix %q holds %q; AWS secret names allow letters, digits and /_+=.@-", prefix, c)
		}
	}
	return nil
}
