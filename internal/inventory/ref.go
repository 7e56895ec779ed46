package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/secret"
)

// Ref says where a credential is kept, never what it is: "file:admin/orders-db",
// "env:ORDERS_ADMIN_PASSWORD". The inventory is read by people, copied into tickets and
// kept in Git, so it must never hold material itself.
//
// Forms: file:<secret-id>[#field], vault:<path>[#field] (a KV v2 path under the mount,
// e.g. vault:secret/admin/orders-db), awssm:<name>[#field] and env:<VAR_NAME>.
type Ref string

// Reference schemes.
const (
	// RefFile reads a field of another secret in Keyturn's file store.
	RefFile = "file"
	// RefEnv reads an environment variable of the worker process.
	RefEnv = "env"
	// RefVault reads a field of a Vault KV v2 secret: vault:<mount>/<path>[#field].
	RefVault = "vault"
	// RefAWSSM reads a JSON key of an AWS Secrets Manager secret's current value.
	RefAWSSM = "awssm"
)

// DefaultRefField is the field a file, vault or awssm reference reads when it names none.
const DefaultRefField = "password"

// Reference errors, for errors.Is. Their messages never contain the reference, which
// might be a pasted password.
var (
	// ErrRefNotReference means the value has no known scheme, so it is most likely a
	// literal password.
	ErrRefNotReference = errors.New("not a reference (value hidden): a literal password is never accepted")
	// ErrRefMalformed means the scheme is known but the rest does not fit its form.
	ErrRefMalformed = errors.New("malformed reference")
	// ErrRefUnsupported means the scheme is valid but cannot be resolved in this release.
	ErrRefUnsupported = errors.New("reference scheme not supported yet")
)

// refForms lists the forms that Validate accepts, for messages.
const refForms = "file:<secret-id>[#field], vault:<mount>/<path>[#field], awssm:<name>[#field] or env:<VAR_NAME>"

var (
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	refFieldPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// RefParts is a parsed Ref.
type RefParts struct {
	// Scheme is one of the Ref scheme constants.
	Scheme string
	// Path is the secret ID, Vault path, AWS secret name or environment variable name.
	Path string
	// Field is the field to read inside the referenced secret; DefaultRefField when the
	// reference names none, and empty for env references, which hold a single value.
	Field string
}

// Parse splits the reference into its parts. It accepts every scheme, including those
// that cannot be resolved yet; Validate also rejects those.
func (r Ref) Parse() (RefParts, error) {
	scheme, rest, ok := strings.Cut(string(r), ":")
	if !ok || !yamlfields.Contains([]string{RefFile, RefEnv, RefVault, RefAWSSM}, scheme) {
		return RefParts{}, fmt.Errorf("%w; write where the password is kept instead: %s", ErrRefNotReference, refForms)
	}
	if scheme == RefEnv {
		if !envNamePattern.MatchString(rest) {
			return RefParts{}, fmt.Errorf("%w: env: must be followed by a variable name of letters, digits and '_', not starting with a digit, e.g. env:ORDERS_ADMIN_PASSWORD", ErrRefMalformed)
		}
		return RefParts{Scheme: scheme, Path: rest}, nil
	}
	path, field, hasField := strings.Cut(rest, "#")
	if hasField && !refFieldPattern.MatchString(field) {
		return RefParts{}, fmt.Errorf("%w: the field after '#' must be a name of letters, digits, '_', '.' and '-', e.g. %s:<path>#password", ErrRefMalformed, scheme)
	}
	if !hasField {
		field = DefaultRefField
	}
	switch {
	case path == "":
		return RefParts{}, fmt.Errorf("%w: nothing follows %s:; write e.g. %s:<path>[#field]", ErrRefMalformed, scheme, scheme)
	case strings.ContainsAny(path, " \t\r\n"):
		return RefParts{}, fmt.Errorf("%w: the part after %s: contains whitespace", ErrRefMalformed, scheme)
	case scheme == RefFile && secret.ID(path).Validate() != nil:
		return RefParts{}, fmt.Errorf("%w: file: must be followed by a secret id (lower-case segments of a-z, 0-9, '.', '_' and '-' separated by '/'), e.g. file:admin/orders-db", ErrRefMalformed)
	}
	return RefParts{Scheme: scheme, Path: path, Field: field}, nil
}

// Validate parses the reference and checks that this release can resolve it.
func (r Ref) Validate() error {
	parts, err := r.Parse()
	if err != nil {
		return err
	}
	if parts.Scheme == RefVault && !strings.Contains(parts.Path, "/") {
		return fmt.Errorf("%w: vault: must name the mount and the path, e.g. vault:secret/admin/orders-db", ErrRefMalformed)
	}
	return nil
}
