package awssm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// BookkeepingKey is the key of the SecretString's JSON object where Keyturn keeps its
// own record of the version: token, number, creation time and metadata. Material fields
// and metadata keys may not use it.
const BookkeepingKey = "keyturn"

// ForeignTokenPrefix starts the token of a version Keyturn did not write (a value put by
// hand or by another tool, with no bookkeeping): the rest is the AWS VersionId. Such
// tokens can be read and promoted (a rollback to a hand-made version) but not staged.
const ForeignTokenPrefix = "awssm-version:"

// formatVersion is the bookkeeping format this package writes. Bump it when a change
// would make an older Keyturn misread a newer version.
const formatVersion = 1

// placeholderVersionID is the VersionId of the placeholder that holds AWSCURRENT until a
// secret's first promote (see the package doc). It is the same in every secret, which is
// fine because AWS scopes VersionIds to their secret, and it is derived like token IDs
// under a different prefix, so no token maps to it.
var placeholderVersionID = hashID("keyturn-placeholder\x00")

// placeholderValue is the placeholder's SecretString. It is constant so that creating a
// secret twice with the same ClientRequestToken is idempotent instead of a conflict.
var placeholderValue = mustJSON(map[string]any{BookkeepingKey: bookkeeping{Format: formatVersion, Placeholder: true}})

// VersionID returns the AWS VersionId (also the ClientRequestToken) a token's version is
// stored under. AWS requires 32 to 64 characters of letters, digits and hyphens, which
// Keyturn tokens ("rotate/prod/db/app/<run-id>") are not, so the ID is the hex SHA-256 of
// the token under a fixed prefix: stable, so a retried stage finds the first attempt's
// version, and computable by an operator from the token alone. A foreign token gives back
// the VersionId it carries.
func VersionID(token secret.VersionToken) string {
	if id, ok := strings.CutPrefix(string(token), ForeignTokenPrefix); ok {
		return id
	}
	return hashID("keyturn-version\x00" + string(token))
}

func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// bookkeeping is Keyturn's record of a version, kept in the value under BookkeepingKey.
// It holds no material.
type bookkeeping struct {
	Format      int                 `json:"format"`
	Placeholder bool                `json:"placeholder,omitempty"`
	Token       secret.VersionToken `json:"token,omitempty"`
	Number      int                 `json:"number,omitempty"`
	CreatedAt   time.Time           `json:"created_at,omitzero"`
	Metadata    map[string]string   `json:"metadata,omitempty"`
}

// encodeValue builds the SecretString of a new version: the material fields, the
// metadata as plain fields (consumers want "username" beside "password"), and the
// bookkeeping. This is the one place the material is revealed for writing.
//
// The top level is what AWS's tools read. For a database secret the rotator's metadata
// and material make it AWS's documented structure for database credentials (engine, host,
// port, dbname, username, password); stores.ConsumerMetadataValue writes the port as the
// JSON number that structure has. The bookkeeping keeps the metadata as text too, and is
// what Keyturn reads back, so a version's metadata round-trips unchanged.
func encodeValue(bk bookkeeping, m secret.Material) (string, error) {
	obj := make(map[string]any, len(m)+len(bk.Metadata)+1)
	for k, v := range bk.Metadata {
		obj[k] = stores.ConsumerMetadataValue(k, v)
	}
	for k, v := range m {
		obj[k] = v.Reveal()
	}
	obj[BookkeepingKey] = bk
	data, err := json.Marshal(obj)
	if err != nil {
		// Only the bookkeeping can fail to encode, and it holds no material.
		return "", fmt.Errorf("encode secret value: %w", err)
	}
	return string(data), nil
}

// decoded is one version's value taken apart.
type decoded struct {
	bk bookkeeping
	// fields are the top-level members other than the bookkeeping, still encoded.
	fields map[string]json.RawMessage
}

// errNotJSONObject is returned for a value that is not a JSON object. The JSON decoder's
// own message is not passed on: it quotes the offending character, which is material.
var errNotJSONObject = errors.New("secret value is not a JSON object")

func decodeValue(value string) (decoded, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &fields); err != nil || fields == nil {
		return decoded{}, errNotJSONObject
	}
	var d decoded
	if raw, ok := fields[BookkeepingKey]; ok {
		if err := json.Unmarshal(raw, &d.bk); err != nil {
			return decoded{}, fmt.Errorf("decode %q bookkeeping: malformed", BookkeepingKey)
		}
		if d.bk.Format > formatVersion {
			return decoded{}, fmt.Errorf("bookkeeping format %d is newer than this Keyturn reads (%d)", d.bk.Format, formatVersion)
		}
		delete(fields, BookkeepingKey)
	}
	d.fields = fields
	return d, nil
}

// foreign reports whether the version was not written by Keyturn.
func (d decoded) foreign() bool { return d.bk.Token == "" && !d.bk.Placeholder }

// material returns the string fields that are not metadata. Fields of other JSON types
// (a port number in a hand-made secret) are not material and are left out.
func (d decoded) material() secret.Material {
	m := secret.Material{}
	for k, raw := range d.fields {
		if _, meta := d.bk.Metadata[k]; meta {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			m[k] = secret.NewSensitive(s)
		}
	}
	return m
}

// field returns one top-level field as text: a string as is, a number or boolean as its
// JSON literal (a "port": 5432 in a hand-made secret).
func (d decoded) field(name string) (secret.Sensitive, bool, error) {
	raw, ok := d.fields[name]
	if !ok {
		return secret.Sensitive{}, false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return secret.NewSensitive(s), true, nil
	}
	var v any
	if json.Unmarshal(raw, &v) == nil {
		switch v.(type) {
		case float64, bool:
			return secret.NewSensitive(string(raw)), true, nil
		}
	}
	return secret.Sensitive{}, true, fmt.Errorf("field %q is not a string, number or boolean", name)
}

// version describes the decoded value as a secret.Version. versionID and created come
// from AWS and are used for foreign versions, which have no bookkeeping.
func (d decoded) version(id secret.ID, versionID string, created time.Time, labels []string) secret.Version {
	v := secret.Version{
		SecretID:  id,
		Token:     d.bk.Token,
		Number:    d.bk.Number,
		Stages:    stagesOf(labels),
		CreatedAt: d.bk.CreatedAt,
	}
	if d.foreign() {
		v.Token = secret.VersionToken(ForeignTokenPrefix + versionID)
		v.CreatedAt = created
	}
	if len(d.bk.Metadata) > 0 {
		v.Metadata = maps.Clone(d.bk.Metadata)
	}
	return v
}

// checkStage validates a stage request before anything is sent to AWS.
func checkStage(token secret.VersionToken, m secret.Material, metadata map[string]string) error {
	if err := token.Validate(); err != nil {
		return err
	}
	if strings.HasPrefix(string(token), ForeignTokenPrefix) {
		return fmt.Errorf("version token %q uses the prefix %q reserved for versions Keyturn did not write", token, ForeignTokenPrefix)
	}
	if len(m) == 0 {
		return fmt.Errorf("version %q has no material", token)
	}
	for k := range m {
		switch {
		case k == "":
			return fmt.Errorf("version %q has a material field with an empty name", token)
		case k == BookkeepingKey:
			return fmt.Errorf("material field name %q is reserved for Keyturn's bookkeeping", k)
		}
		if _, dup := metadata[k]; dup {
			return fmt.Errorf("field %q is both material and metadata; they share the secret's JSON object", k)
		}
	}
	for k := range metadata {
		switch {
		case k == "":
			return fmt.Errorf("version %q has a metadata key with an empty name", token)
		case k == BookkeepingKey:
			return fmt.Errorf("metadata key %q is reserved for Keyturn's bookkeeping", k)
		}
	}
	if err := stores.CheckConsumerMetadata(metadata); err != nil {
		return fmt.Errorf("version %q: %w", token, err)
	}
	return nil
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}
