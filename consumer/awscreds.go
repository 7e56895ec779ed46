package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/secret"
)

// The material fields of an IAM access key, as rotators/awsiam writes them.
const (
	// FieldAccessKeyID holds the access key ID (AKIA...).
	FieldAccessKeyID = "access_key_id"
	// FieldSecretAccessKey holds the secret access key.
	FieldSecretAccessKey = "secret_access_key"
)

// AWSCredentials is an aws.CredentialsProvider for an IAM access key Keyturn rotates,
// read through a Cache. Wrap it in aws.NewCredentialsCache, as the SDK does with every
// provider: each Credentials it returns expires when the Cache would read the secret
// again, so the SDK asks again in step with the Cache and picks up a promoted key within
// one TTL.
//
// Keep the TTL shorter than the rotation's grace period (see the package doc): the SDK
// keeps signing with the old key until its Credentials expire.
type AWSCredentials struct {
	cache *Cache
	id    secret.ID
}

var _ aws.CredentialsProvider = (*AWSCredentials)(nil)

// NewAWSCredentials returns a provider of the access key held by secret id.
func NewAWSCredentials(cache *Cache, id secret.ID) *AWSCredentials {
	return &AWSCredentials{cache: cache, id: id}
}

// Retrieve implements aws.CredentialsProvider: the key pair of the secret's current
// version, expiring when the Cache's copy stops being fresh (or, while a stale copy is
// served during a store outage, when the Cache will try the store again).
func (p *AWSCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := p.cache.Get(ctx, p.id)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("aws credentials from secret: %w", err)
	}
	id, key := v.Field(FieldAccessKeyID).Reveal(), v.Field(FieldSecretAccessKey).Reveal()
	for _, f := range [...]struct{ name, val string }{{FieldAccessKeyID, id}, {FieldSecretAccessKey, key}} {
		if f.val == "" {
			return aws.Credentials{}, fmt.Errorf("aws credentials from secret %s: version %d has no %q field", p.id, v.Version.Number, f.name)
		}
	}
	expires := p.cache.freshUntil(p.id)
	if now := p.cache.opts.Now(); !expires.After(now) {
		// Another Get refreshed or invalidated the entry in between: ask again soon.
		expires = now.Add(time.Second)
	}
	return aws.Credentials{
		AccessKeyID:     id,
		SecretAccessKey: key,
		Source:          "Keyturn",
		CanExpire:       true,
		Expires:         expires,
	}, nil
}

// Invalidate makes the next Retrieve read the store. Call it, and the
// aws.CredentialsCache's Invalidate, when AWS refuses the key (InvalidClientTokenId):
// the key was rotated and the cached copy is older than the grace period allows.
func (p *AWSCredentials) Invalidate() { p.cache.Invalidate(p.id) }
