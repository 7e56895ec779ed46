package awssm

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// ReadField returns one field of the AWSCURRENT value of the secret called name, which
// must be a JSON object. It resolves the inventory's awssm:<name>#<field> references, such
// as an admin password kept in Secrets Manager.
//
// name is the secret's full name or ARN, used as given: NamePrefix does not apply,
// because references usually point at secrets Keyturn does not manage. A string field is
// returned as is; a number or boolean (an RDS-style "port": 5432) as its JSON text.
// ErrNotFound (from package stores) when the secret, its current value or the field is
// missing.
func (s *Store) ReadField(ctx context.Context, name, field string) (secret.Sensitive, error) {
	switch {
	case name == "":
		return secret.Sensitive{}, errors.New("read field: no secret name")
	case field == "":
		return secret.Sensitive{}, fmt.Errorf("read field of %s: no field name", name)
	case field == BookkeepingKey:
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: %q is Keyturn's bookkeeping, not a credential field", name, field, field)
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String(LabelCurrent),
	})
	if isNotFound(err) {
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: no current value: %w", name, field, stores.ErrNotFound)
	}
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: %w", name, field, s.apiError("GetSecretValue", name, err))
	}
	if aws.ToString(out.VersionId) == placeholderVersionID {
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: Keyturn created the secret but has not promoted a version yet: %w",
			name, field, stores.ErrNotFound)
	}
	if out.SecretString == nil {
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: the current value is binary, not a JSON object", name, field)
	}
	d, err := decodeValue(*out.SecretString)
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: %w", name, field, err)
	}
	value, ok, err := d.field(field)
	switch {
	case err != nil:
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: %w", name, field, err)
	case !ok:
		return secret.Sensitive{}, fmt.Errorf("read field %s#%s: the current value has no such field: %w", name, field, stores.ErrNotFound)
	}
	return value, nil
}
