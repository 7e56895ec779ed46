package awsiam

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Keys of the material and the metadata.
const (
	// FieldAccessKeyID is the material field holding the access key ID. It is an
	// identifier, not a secret, and is repeated in the metadata.
	FieldAccessKeyID = "access_key_id"
	// FieldSecretAccessKey is the material field holding the secret access key.
	FieldSecretAccessKey = "secret_access_key"
	// MetadataAccessKeyID is the access key a version holds.
	MetadataAccessKeyID = "access_key_id"
	// MetadataUser is the IAM user the key belongs to.
	MetadataUser = "user"
)

// Rotator rotates the access keys of one IAM user. It implements rotators.Minter, because
// IAM makes the secret, rotators.Purger, because a revoked key is first deactivated (and
// can be reactivated) and only deleted later, and rotators.Sweeper, because the user's
// keys show what a failed Mint left.
type Rotator struct {
	cfg Config
	// admin is the admin principal's configuration; Test copies it to sign with the key
	// under test.
	admin aws.Config
	iam   *iam.Client
	// retryDelay is Test's first wait between STS attempts; it doubles up to maxRetryDelay.
	retryDelay, maxRetryDelay time.Duration
}

var (
	_ rotators.Minter  = (*Rotator)(nil)
	_ rotators.Purger  = (*Rotator)(nil)
	_ rotators.Sweeper = (*Rotator)(nil)
)

// New checks cfg, after filling in its defaults, and returns a Rotator for it. awsCfg is
// the admin principal's configuration (credentials, region, and BaseEndpoint or
// AWS_ENDPOINT_URL for a local imitation such as moto); it needs the permissions in
// iam-policy.json. An invalid cfg gives an error wrapping rotators.ErrInvalidConfig.
func New(cfg Config, awsCfg aws.Config, opts ...Option) (*Rotator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var problems []string
	if awsCfg.Region == "" {
		// IAM is global, but STS and request signing need a region.
		problems = append(problems, "the AWS configuration has no region: set AWS_REGION (or region in the worker's AWS profile)")
	}
	if awsCfg.Credentials == nil {
		problems = append(problems, "the AWS configuration has no credentials: give the worker an AWS identity with the permissions in rotators/awsiam/iam-policy.json")
	}
	if len(problems) > 0 {
		return nil, invalidConfig("%s", strings.Join(problems, "; "))
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return &Rotator{
		cfg:   cfg,
		admin: awsCfg,
		iam: iam.NewFromConfig(awsCfg, func(io *iam.Options) {
			if o.throttle != nil {
				io.Retryer = o.throttle
			}
		}),
		retryDelay:    250 * time.Millisecond,
		maxRetryDelay: 2 * time.Second,
	}, nil
}

// PurgeAfter is Config.DeleteAfter: how long a deactivated key stays recoverable.
func (r *Rotator) PurgeAfter() time.Duration { return r.cfg.DeleteAfter }

// Mint makes a new access key for the user, in four steps (see the package documentation):
// list the user's keys, delete the keys an interrupted earlier Mint of this version left
// behind (named in req.Abandoned, or unknown to the store and created since req.Since),
// make room under IAM's two-key limit, and create the key, reporting it through
// req.Minted at once.
func (r *Rotator) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	current := r.currentKey(req.Current)

	// Step 1. What the user has now.
	keys, err := r.listKeys(ctx)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}

	// Step 2. Keys made by an interrupted Mint of this version, found among the user's
	// keys (see orphans): their secret is lost, so nobody can use them, and they take a
	// slot. Only keys listed under the user are touched, and never the current one.
	keys, _, err = r.removeOrphans(ctx, keys, req, current)
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", err)
	}

	// Step 3. IAM allows two keys per user.
	if len(keys) >= 2 {
		if err := r.makeRoom(ctx, keys, current); err != nil {
			return rotators.Generated{}, err
		}
	}

	// Step 4. The new key, reported before anything else can fail, so that an
	// interrupted step can pass it back as abandoned.
	out, err := r.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(r.cfg.UserName)})
	if err != nil {
		return rotators.Generated{}, fmt.Errorf("mint: %w", r.fail("iam:CreateAccessKey", err))
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	md := map[string]string{MetadataAccessKeyID: id, MetadataUser: r.cfg.UserName}
	if req.Minted != nil {
		req.Minted(md)
	}
	if id == "" || aws.ToString(out.AccessKey.SecretAccessKey) == "" {
		return rotators.Generated{}, fmt.Errorf("mint: iam:CreateAccessKey on IAM user %q returned no key", r.cfg.UserName)
	}
	return rotators.Generated{
		Material: secret.Material{
			FieldAccessKeyID:     secret.NewSensitive(id),
			FieldSecretAccessKey: secret.NewSensitive(aws.ToString(out.AccessKey.SecretAccessKey)),
		},
		Metadata: md,
	}, nil
}

// makeRoom deletes one key other than current, when the user has two: only an inactive
// one, and only with DeleteInactive. An active key may be in use by someone Keyturn does
// not know of, so it is never deleted; the error says what to do instead.
func (r *Rotator) makeRoom(ctx context.Context, keys []types.AccessKeyMetadata, current string) error {
	var others []types.AccessKeyMetadata
	for _, k := range keys {
		if aws.ToString(k.AccessKeyId) != current {
			others = append(others, k)
		}
	}
	// Oldest first: with the current key unknown, the older key is the likelier leftover.
	slices.SortFunc(others, func(a, b types.AccessKeyMetadata) int {
		return aws.ToTime(a.CreateDate).Compare(aws.ToTime(b.CreateDate))
	})
	for _, k := range others {
		if k.Status != types.StatusTypeInactive {
			continue
		}
		id := aws.ToString(k.AccessKeyId)
		if !r.cfg.DeleteInactive {
			return invalidConfig("IAM user %q already has two access keys (IAM's limit) and the one not in use, %s, is %s: "+
				"delete it (aws iam delete-access-key --user-name %s --access-key-id %s), or set delete_inactive: true "+
				"in this secret's awsiam block to let Keyturn delete inactive keys",
				r.cfg.UserName, id, k.Status, r.cfg.UserName, id)
		}
		if err := r.deleteKey(ctx, id); err != nil {
			return fmt.Errorf("mint: make room: %w", err)
		}
		return nil
	}
	var described []string
	for _, k := range others {
		described = append(described, fmt.Sprintf("%s (%s)", aws.ToString(k.AccessKeyId), k.Status))
	}
	inUse := "no key recorded as the current version"
	if current != "" {
		inUse = "the current version's key " + current
	}
	return invalidConfig("IAM user %q already has two access keys (IAM's limit); besides %s it has %s, "+
		"and Keyturn never deletes an active key: if nothing uses it, deactivate and delete it "+
		"(aws iam delete-access-key --user-name %s --access-key-id <id>), then retry",
		r.cfg.UserName, inUse, strings.Join(described, " and "), r.cfg.UserName)
}

// Apply makes the version's key active. A fresh key already is, so this matters for a
// rollback: a deactivated key is reactivated. A deleted key cannot come back.
func (r *Rotator) Apply(ctx context.Context, req rotators.ApplyRequest) error {
	id, err := r.keyOf(req.Version, req.Material)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	err = r.setStatus(ctx, id, types.StatusTypeActive)
	if isNoSuchEntity(err) {
		return fmt.Errorf("apply: access key %s of IAM user %q no longer exists (deleted keys cannot be restored): %w",
			id, r.cfg.UserName, rotators.ErrCredentialRejected)
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// Revoke deactivates the version's key, which can still be undone by Apply until Purge
// deletes it. A key that is already gone counts as revoked; Keep's key is never touched.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	id, skip, err := r.revocable(req)
	if err != nil || skip {
		return err
	}
	if err := r.setStatus(ctx, id, types.StatusTypeInactive); err != nil && !isNoSuchEntity(err) {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

// Purge deletes the version's key. A key that is already gone counts as purged; Keep's
// key is never touched. A key that is active again was reactivated after Revoke (a manual
// recovery): Purge leaves it and fails, because deleting it would break whoever uses it.
func (r *Rotator) Purge(ctx context.Context, req rotators.RevokeRequest) error {
	id, skip, err := r.revocable(req)
	if err != nil || skip {
		return err
	}
	keys, err := r.listKeys(ctx)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	i := slices.IndexFunc(keys, hasID(id))
	if i < 0 {
		return nil
	}
	if keys[i].Status != types.StatusTypeInactive {
		return fmt.Errorf("purge: access key %s of IAM user %q is %s again, so it was reactivated after it was revoked; "+
			"Keyturn does not delete a key that may be in use: deactivate it if nothing uses it, and the next attempt deletes it",
			id, r.cfg.UserName, keys[i].Status)
	}
	if err := r.deleteKey(ctx, id); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	return nil
}

// revocable returns the key a Revoke or Purge acts on, or skip when it is Keep's key.
func (r *Rotator) revocable(req rotators.RevokeRequest) (id string, skip bool, err error) {
	id, err = r.keyOf(req.Version, nil)
	if err != nil {
		return "", false, err
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataAccessKeyID] == id {
		return id, true, nil
	}
	return id, false, nil
}

// keyOf returns the access key a version holds: from its metadata, or from its material
// when the metadata lacks it (a version recorded by hand). A version of another IAM user
// is refused: this rotator may only touch Config.UserName. Material for another key than
// the metadata names is rejected.
func (r *Rotator) keyOf(v secret.Version, m secret.Material) (string, error) {
	if user := v.Metadata[MetadataUser]; user != "" && user != r.cfg.UserName {
		return "", invalidConfig("version %d holds a key of IAM user %q, but this secret rotates %q: "+
			"manage that key by hand", v.Number, user, r.cfg.UserName)
	}
	id := v.Metadata[MetadataAccessKeyID]
	fromMaterial := m.Get(FieldAccessKeyID).Reveal()
	switch {
	case id != "" && fromMaterial != "" && fromMaterial != id:
		return "", fmt.Errorf("the material holds access key %s but version %d is key %s: %w",
			fromMaterial, v.Number, id, rotators.ErrCredentialRejected)
	case id == "" && fromMaterial != "":
		return fromMaterial, nil
	case id == "":
		return "", invalidConfig("version %d names no access key: record it with metadata %s=<key id> "+
			"(keyturn put --meta %s=AKIA...)", v.Number, MetadataAccessKeyID, MetadataAccessKeyID)
	}
	return id, nil
}

// currentKey is the key consumers use now, if known and the user's.
func (r *Rotator) currentKey(v *secret.Version) string {
	if v == nil {
		return ""
	}
	if user := v.Metadata[MetadataUser]; user != "" && user != r.cfg.UserName {
		return ""
	}
	return v.Metadata[MetadataAccessKeyID]
}

// listKeys returns the user's access keys. A missing user is a configuration error.
func (r *Rotator) listKeys(ctx context.Context) ([]types.AccessKeyMetadata, error) {
	var keys []types.AccessKeyMetadata
	pages := iam.NewListAccessKeysPaginator(r.iam, &iam.ListAccessKeysInput{UserName: aws.String(r.cfg.UserName)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNoSuchEntity(err) {
			return nil, invalidConfig("IAM user %q does not exist: create it, or fix awsiam.user (Keyturn never creates users): %v",
				r.cfg.UserName, err)
		}
		if err != nil {
			return nil, r.fail("iam:ListAccessKeys", err)
		}
		keys = append(keys, page.AccessKeyMetadata...)
	}
	return keys, nil
}

// setStatus activates or deactivates a key. The error keeps NoSuchEntity for the caller.
func (r *Rotator) setStatus(ctx context.Context, id string, status types.StatusType) error {
	_, err := r.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
		UserName: aws.String(r.cfg.UserName), AccessKeyId: aws.String(id), Status: status,
	})
	if err != nil && !isNoSuchEntity(err) {
		return r.fail(fmt.Sprintf("iam:UpdateAccessKey (%s to %s)", id, status), err)
	}
	return err
}

// deleteKey deletes a key; one already gone is success.
func (r *Rotator) deleteKey(ctx context.Context, id string) error {
	_, err := r.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{
		UserName: aws.String(r.cfg.UserName), AccessKeyId: aws.String(id),
	})
	if err != nil && !isNoSuchEntity(err) {
		return r.fail(fmt.Sprintf("iam:DeleteAccessKey (%s)", id), err)
	}
	return nil
}

// hasID matches the key with the given ID.
func hasID(id string) func(types.AccessKeyMetadata) bool {
	return func(k types.AccessKeyMetadata) bool { return aws.ToString(k.AccessKeyId) == id }
}
