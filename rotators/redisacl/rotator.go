package redisacl

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Keys of the metadata Generate writes, and of the material field.
const (
	// MetadataUser is the ACL user the version's password belongs to.
	MetadataUser = "user"
	// MetadataUsername is the user name consumers log in with (the same ACL user).
	MetadataUsername = "username"
	// MetadataPasswordID names the version's password without revealing it: the first
	// 16 hex digits of its SHA-256, the form Redis keeps (see PasswordID).
	MetadataPasswordID = "password_id"
	// MetadataNodes lists the nodes, comma-separated, for consumers.
	MetadataNodes = "nodes"
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
)

// passwordBytes is the password's randomness: 256 bits, so that nothing can be learnt
// from the SHA-256 Redis keeps of it.
const passwordBytes = 32

// passwordIDLen is how many hex digits of the hash name a version: 64 bits, enough to
// tell a user's few passwords apart, too few to be of use to anyone holding them.
const passwordIDLen = 16

// Rotator rotates the password of one ACL user on a set of Redis nodes. A user may hold
// several passwords at once, so a rotation adds the new one beside the old (Apply), and
// the revoke removes the old one: consumers never see a window in which their password
// does not work. It holds no connection: each call logs in to each node and logs out.
type Rotator struct {
	cfg   Config
	roots *x509.CertPool
}

var (
	_ rotators.Generator     = (*Rotator)(nil)
	_ rotators.UsageReporter = (*Rotator)(nil)
)

// New checks cfg, after filling in its defaults, and returns a Rotator for it.
func New(cfg Config) (*Rotator, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	roots, err := parseRoots(cfg.CAPEM)
	if err != nil {
		return nil, err
	}
	return &Rotator{cfg: cfg, roots: roots}, nil
}

// PasswordID returns the handle MetadataPasswordID of a password: the first 16 hex digits
// of its SHA-256. `keyturn put` computes it for a password recorded by hand.
func PasswordID(password string) string { return hashOf(password)[:passwordIDLen] }

// hashOf is the password's SHA-256 in lower-case hex, the form ACL SETUSER takes after
// '#' and ACL GETUSER shows.
func hashOf(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// Generate makes a new password for the user. It does not touch the nodes.
func (r *Rotator) Generate(_ context.Context, _ rotators.GenerateRequest) (rotators.Generated, error) {
	b := make([]byte, passwordBytes)
	// crypto/rand.Read never fails since Go 1.24: it crashes the program rather than
	// return predictable bytes.
	_, _ = rand.Read(b)
	password := base64.RawURLEncoding.EncodeToString(b)
	return rotators.Generated{
		Material: secret.Material{FieldPassword: secret.NewSensitive(password)},
		Metadata: map[string]string{
			MetadataUser:       r.cfg.User,
			MetadataUsername:   r.cfg.User,
			MetadataPasswordID: PasswordID(password),
			MetadataNodes:      strings.Join(r.cfg.Nodes, ","),
		},
	}, nil
}

// Apply adds the version's password to the user on every node, beside the passwords the
// user has: the current one keeps working. Only the SHA-256 is sent (ACL SETUSER u
// #<hash>), so the password never reaches MONITOR, the slow log or the ACL file. A node
// that fails stops the step, and the nodes this call added the password to lose it
// again, so a failed Apply leaves the user as it found it; a password the user already
// had stays. Applying again is harmless.
func (r *Rotator) Apply(ctx context.Context, req rotators.ApplyRequest) error {
	if err := r.owns(req.Version); err != nil {
		return err
	}
	password := req.Material.Get(FieldPassword).Reveal()
	if password == "" {
		return fmt.Errorf("redis: %w: version %d has no %q field", rotators.ErrInvalidConfig, req.Version.Number, FieldPassword)
	}
	hash := hashOf(password)
	var added []string
	for _, node := range r.cfg.Nodes {
		did, err := r.addPassword(ctx, node, hash)
		if did {
			added = append(added, node)
		}
		if err != nil {
			r.undoAdd(added, hash)
			return scrub(err, password, hash)
		}
	}
	return nil
}

// addPassword adds hash to the user on one node and saves the ACL file, reporting
// whether this call added it (then the caller undoes it if the step fails, a failed save
// included). A hash already there is saved again: an earlier attempt may have added it
// and failed to save, and a retry must not call that done.
func (r *Rotator) addPassword(ctx context.Context, node, hash string) (bool, error) {
	c := r.admin(node)
	defer c.Close()
	have, exists, err := passwords(ctx, c, r.cfg.User)
	if err != nil {
		return false, classify(node, "read user "+r.cfg.User, err)
	}
	if !exists {
		return false, fmt.Errorf("redis: %w: user %q does not exist on %s; create it there with the rules the application needs (ACL SETUSER %s on ~<keys> +<commands>) before the first rotation", rotators.ErrInvalidConfig, r.cfg.User, node, r.cfg.User)
	}
	if slices.Contains(have, hash) {
		return false, classify(node, "ACL SAVE", save(ctx, c))
	}
	if err := c.Do(ctx, "ACL", "SETUSER", r.cfg.User, "#"+hash).Err(); err != nil {
		return false, classify(node, "add a password to user "+r.cfg.User, err)
	}
	return true, classify(node, "ACL SAVE", save(ctx, c))
}

// undoAdd removes hash from the user on the nodes a failed Apply added it to. It has a
// context of its own: the step's may be what ended. What it cannot undo now, the
// rollback's revoke of the version removes later.
func (r *Rotator) undoAdd(nodes []string, hash string) {
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		c := r.admin(node)
		_ = setUser(ctx, c, r.cfg.User, "!"+hash)
		_ = c.Close()
		cancel()
	}
}

// Test logs in as the user with the version's password on every node and runs the
// declared check there. A refused login is rotators.ErrCredentialRejected, a check the
// user may not run rotators.ErrCheckFailed, and a check the server does not flag
// read-only rotators.ErrInvalidConfig.
func (r *Rotator) Test(ctx context.Context, req rotators.TestRequest) error {
	password := req.Material.Get(FieldPassword).Reveal()
	if password == "" {
		return fmt.Errorf("redis: %w: version %d has no %q field", rotators.ErrInvalidConfig, req.Version.Number, FieldPassword)
	}
	user := r.cfg.User
	if u := req.Version.Metadata[MetadataUser]; u != "" {
		user = u
	}
	for _, node := range r.cfg.Nodes {
		if err := r.readOnly(ctx, node); err != nil {
			return err
		}
		if err := r.testOn(ctx, node, user, password); err != nil {
			return scrub(err, password, hashOf(password))
		}
	}
	return nil
}

func (r *Rotator) testOn(ctx context.Context, node, user, password string) error {
	c := r.dial(node, user, password)
	defer c.Close()
	err := c.Do(ctx, toAny(r.cfg.Check)...).Err()
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	var answer redis.Error
	if !errors.As(err, &answer) {
		return fmt.Errorf("test user %s on %s: %w", user, node, err) // the network: retry
	}
	msg := answer.Error()
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "WRONGPASS":
		return fmt.Errorf("test user %s on %s: %w: the node refused the password", user, node, rotators.ErrCredentialRejected)
	case "LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "MISCONF":
		return fmt.Errorf("test user %s on %s: %s", user, node, msg) // the node is not ready: retry
	}
	// NOPERM, WRONGTYPE, ERR (wrong arguments): the check cannot pass by retrying.
	return fmt.Errorf("test user %s on %s: %w: %s", user, node, rotators.ErrCheckFailed, msg)
}

// readOnly asks the node, as the admin, whether the check command is flagged read-only,
// so a check can never change data. PING, the default, is always allowed.
func (r *Rotator) readOnly(ctx context.Context, node string) error {
	name := strings.ToLower(r.cfg.Check[0])
	if len(r.cfg.Check) == 1 && name == "ping" {
		return nil
	}
	c := r.admin(node)
	defer c.Close()
	res, err := c.Do(ctx, "COMMAND", "INFO", name).Slice()
	if err != nil {
		return classify(node, "COMMAND INFO", err)
	}
	// One entry per name asked: nil for an unknown command, else [name arity flags ...].
	var info []any
	if len(res) == 1 {
		info, _ = res[0].([]any)
	}
	if len(info) < 3 {
		return fmt.Errorf("redis: %w: check command %q is unknown to %s", rotators.ErrInvalidConfig, name, node)
	}
	flags, _ := info[2].([]any)
	if !slices.Contains(flags, any("readonly")) {
		return fmt.Errorf("redis: %w: check command %q is not read-only on %s; declare a read-only command such as GET or EXISTS", rotators.ErrInvalidConfig, name, node)
	}
	return nil
}

// Revoke removes the version's password from the user on every node. Its version is
// found by MetadataPasswordID, so Revoke needs no material, and the password of Keep is
// never removed. A containment (EndSessions with nothing to keep) removes every password
// of the user and ends all its connections on every node: Redis does not record which
// password a connection logged in with. Otherwise sessions are left alone, for the same
// reason: ending them would end the new version's too. Revoking what is gone is success.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	if err := r.owns(req.Version); err != nil {
		return err
	}
	if req.EndSessions && req.Keep == nil {
		for _, node := range r.cfg.Nodes {
			if err := r.containOn(ctx, node); err != nil {
				return err
			}
		}
		return nil
	}
	id := req.Version.Metadata[MetadataPasswordID]
	if len(id) != passwordIDLen {
		return fmt.Errorf("redis: %w: version %d of user %s has no %s, so its password cannot be told from the others; record it with `keyturn put`, which adds it", rotators.ErrInvalidConfig, req.Version.Number, r.cfg.User, MetadataPasswordID)
	}
	if req.Keep != nil && req.Keep.Metadata[MetadataPasswordID] == id {
		return nil // one password: revoking it would revoke Keep
	}
	for _, node := range r.cfg.Nodes {
		if err := r.removeOn(ctx, node, id); err != nil {
			return err
		}
	}
	return nil
}

// removeOn removes the passwords whose hash starts with id from the user on one node.
func (r *Rotator) removeOn(ctx context.Context, node, id string) error {
	c := r.admin(node)
	defer c.Close()
	have, exists, err := passwords(ctx, c, r.cfg.User)
	if err != nil {
		return classify(node, "read user "+r.cfg.User, err)
	}
	if !exists {
		return nil
	}
	var rules []string
	for _, h := range have {
		if strings.HasPrefix(h, id) {
			rules = append(rules, "!"+h)
		}
	}
	if len(rules) == 0 {
		// Saved again: an earlier attempt may have removed it and failed to save, and
		// a restart would bring the password back.
		return classify(node, "ACL SAVE", save(ctx, c))
	}
	return scrub(classify(node, "remove a password of user "+r.cfg.User, setUser(ctx, c, r.cfg.User, rules...)), rules...)
}

// containOn removes every password of the user on one node and ends its connections.
func (r *Rotator) containOn(ctx context.Context, node string) error {
	c := r.admin(node)
	defer c.Close()
	_, exists, err := passwords(ctx, c, r.cfg.User)
	if err != nil {
		return classify(node, "read user "+r.cfg.User, err)
	}
	if !exists {
		return nil
	}
	if err := setUser(ctx, c, r.cfg.User, "resetpass"); err != nil {
		return classify(node, "remove the passwords of user "+r.cfg.User, err)
	}
	if err := c.Do(ctx, "CLIENT", "KILL", "USER", r.cfg.User).Err(); err != nil && !strings.Contains(err.Error(), "No such user") {
		return classify(node, "end the connections of user "+r.cfg.User, err)
	}
	return nil
}

// owns refuses a version of another user: the store's metadata must not steer the
// rotator to a user the inventory does not give it.
func (r *Rotator) owns(v secret.Version) error {
	if u := v.Metadata[MetadataUser]; u != "" && u != r.cfg.User {
		return fmt.Errorf("redis: %w: version %d belongs to user %q, but this secret manages %q", rotators.ErrInvalidConfig, v.Number, u, r.cfg.User)
	}
	return nil
}

// scrub returns err with the given values redacted from its text, keeping the rotators'
// errors it matches for errors.Is.
func scrub(err error, values ...string) error {
	return secret.ScrubError(err, values, rotators.ErrInvalidConfig, rotators.ErrPermissionDenied,
		rotators.ErrCredentialRejected, rotators.ErrCheckFailed)
}

// since is how long ago a connection of age seconds opened.
func since(now time.Time, ageSeconds int64) time.Time {
	return now.Add(-time.Duration(ageSeconds) * time.Second)
}
